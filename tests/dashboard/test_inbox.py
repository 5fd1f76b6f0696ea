"""The inbox at /inbox/ and its JSON endpoints: rule 6 decides what an
operator sees (anything else is a 404), replies are idempotent by
client_id, assign and close go through the services, CSRF is required."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Operator
from conversations import services
from conversations.models import Conversation, Message
from tests.conversations.conftest import visitor_writes
from tests.factories import make_account, make_group, make_operator, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db):
    account = make_account(name="Shop")
    return account


@pytest.fixture
def sales_agent(shop):
    agent = make_operator(account=shop, name="Sára Prodejní")
    make_group(account=shop, key="sales", members=[agent])
    make_group(account=shop, key="support")
    return agent


@pytest.fixture
def support_chat(sales_agent, shop):
    return visitor_writes(shop, "My printer is on fire", client_id="s1", group_key="support", name="Petr").conversation


@pytest.fixture
def sales_chat(sales_agent, shop):
    return visitor_writes(shop, "How much is it?", client_id="p1", group_key="sales", name="Olga").conversation


def signed_in(operator: Operator, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(operator)
    return client


def conversation_url(name: str, conversation: Conversation) -> str:
    return reverse(f"dashboard:{name}", args=[conversation.id])


def reply(client: Client, conversation: Conversation, body: str = "Hello, how can I help?", client_id: str = "r1"):
    return client.post(conversation_url("inbox_reply", conversation), {"body": body, "client_id": client_id})


def listed_ids(client: Client, view: str = "all") -> list[int]:
    response = client.get(reverse("dashboard:inbox_list"), {"view": view})
    assert response.status_code == 200
    return [row["id"] for row in response.json()["conversations"]]


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="inbox-config" type="application/json">') + len(
        '<script id="inbox-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


# --- rule 6 -------------------------------------------------------------------------------


def test_an_agent_of_sales_does_not_see_a_support_conversation(sales_agent, support_chat, sales_chat):
    client = signed_in(sales_agent)

    page = client.get(reverse("dashboard:inbox"))
    # It should list the sales conversation only, in the page and in its JSON.
    assert page.status_code == 200
    assert [row["id"] for row in page_config(page)["rows"]] == [sales_chat.id]
    assert "Olga" in page.content.decode() and "Petr" not in page.content.decode()
    assert listed_ids(client) == [sales_chat.id]
    # It should answer 404 for everything about the support one, and change nothing.
    assert client.get(conversation_url("inbox_conversation", support_chat)).status_code == 404
    assert client.get(conversation_url("inbox_conversation_json", support_chat)).status_code == 404
    assert reply(client, support_chat).status_code == 404
    assert client.post(conversation_url("inbox_assign", support_chat), {"operator": sales_agent.id}).status_code == 404
    assert client.post(conversation_url("inbox_close", support_chat)).status_code == 404
    support_chat.refresh_from_db()
    assert support_chat.status == "open" and support_chat.assignee_id is None
    assert not Message.objects.filter(conversation=support_chat, author="operator").exists()


def test_an_agent_assigned_to_a_support_conversation_may_open_it(sales_agent, support_chat, shop):
    services.conversation_assign(conversation_id=support_chat.id, actor=owner_of(shop), assignee_id=sales_agent.id)
    client = signed_in(sales_agent)

    assert client.get(conversation_url("inbox_conversation_json", support_chat)).status_code == 200
    assert support_chat.id in listed_ids(client, "mine")


def test_an_admin_sees_every_conversation_of_the_account(shop, support_chat, sales_chat):
    client = signed_in(owner_of(shop))

    assert listed_ids(client) == [sales_chat.id, support_chat.id]
    assert client.get(conversation_url("inbox_conversation_json", support_chat)).status_code == 200


def test_another_accounts_conversation_is_a_404_even_for_its_owner(support_chat):
    stranger = owner_of(make_account(name="Elsewhere"))
    client = signed_in(stranger)

    assert listed_ids(client) == []
    assert client.get(conversation_url("inbox_conversation", support_chat)).status_code == 404
    assert client.get(conversation_url("inbox_conversation_json", support_chat)).status_code == 404
    assert reply(client, support_chat).status_code == 404
    assert client.post(conversation_url("inbox_close", support_chat)).status_code == 404


def test_signed_out_callers_get_401_from_the_json_and_the_login_page_for_the_page(support_chat):
    client = Client()

    assert client.get(reverse("dashboard:inbox_count")).status_code == 401
    assert client.get(conversation_url("inbox_conversation_json", support_chat)).status_code == 401
    assert reply(client, support_chat).status_code == 401
    assert client.get(reverse("dashboard:inbox")).status_code == 302


# --- the list ---------------------------------------------------------------------------------


def test_the_three_open_lists_and_the_closed_one(shop):
    me = make_operator(account=shop, name="Me")
    colleague = make_operator(account=shop)
    waiting = visitor_writes(shop, "Anyone?", client_id="w").conversation
    mine = visitor_writes(shop, "Hi", client_id="m").conversation
    services.operator_message_post(conversation_id=mine.id, operator=me, body="Hi!", client_id="m-r")
    theirs = visitor_writes(shop, "Hello", client_id="t").conversation
    services.operator_message_post(conversation_id=theirs.id, operator=colleague, body="Hi!", client_id="t-r")
    closed = visitor_writes(shop, "Bye", client_id="c").conversation
    services.conversation_close(conversation_id=closed.id, actor=me)
    client = signed_in(me)

    # It should show, newest activity first, what each list promises.
    assert listed_ids(client, "waiting") == [waiting.id]
    assert listed_ids(client, "mine") == [mine.id]
    assert listed_ids(client, "all") == [theirs.id, mine.id, waiting.id]
    assert listed_ids(client, "closed") == [closed.id]
    assert client.get(reverse("dashboard:inbox_list"), {"view": "nonsense"}).status_code == 400


def test_each_row_carries_the_last_message_as_a_preview(shop, sales_agent, sales_chat):
    services.operator_message_post(
        conversation_id=sales_chat.id, operator=sales_agent, body="It is 20 €.", client_id="x"
    )
    row = signed_in(sales_agent).get(reverse("dashboard:inbox_list")).json()["conversations"][0]

    assert row["preview"] == {"author": "operator", "body": "It is 20 €."}
    assert row["visitor"]["name"] == "Olga" and row["group"] == "sales" and row["waiting_since"] is None


def test_the_list_pages_with_a_cursor_that_skips_nothing(shop, monkeypatch):
    monkeypatch.setattr("conversations.selectors.INBOX_PAGE_SIZE", 2)
    ids = [visitor_writes(shop, f"Hi {n}", client_id=f"n{n}").conversation.id for n in range(5)]
    client = signed_in(owner_of(shop))

    seen, before = [], None
    while True:
        query = {"view": "all"} | ({"before": before} if before else {})
        data = client.get(reverse("dashboard:inbox_list"), query).json()
        seen += [row["id"] for row in data["conversations"]]
        before = data["next"]
        if before is None:
            break
    assert seen == list(reversed(ids))


def test_a_message_from_the_old_offline_form_is_a_conversation_in_the_inbox(shop):
    services.offline_form_submit(account_id=shop.id, name="Karel", email="karel@example.cz", body="Old form message")
    html = signed_in(owner_of(shop)).get(reverse("dashboard:inbox")).content.decode()

    assert "Old form message" in html and "Karel" in html


def test_visitor_text_is_escaped_in_the_page(shop):
    visitor_writes(shop, "<img src=x onerror=alert(1)>", client_id="xss", name="<b>Eve</b>")
    html = signed_in(owner_of(shop)).get(reverse("dashboard:inbox")).content.decode()

    assert "<b>Eve</b>" not in html and "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert "<img src=x" not in html


def test_a_conversations_own_url_opens_the_page_with_it(shop, sales_chat):
    response = signed_in(owner_of(shop)).get(conversation_url("inbox_conversation", sales_chat))

    assert response.status_code == 200
    assert page_config(response)["open"] == sales_chat.id


# --- one conversation ----------------------------------------------------------------------------


def test_the_conversation_json_has_the_messages_and_the_visitors_details(shop, sales_agent):
    started = visitor_writes(
        shop, "Hi", client_id="d1", group_key="sales", name="Olga", email="olga@example.cz",
        page_url="https://shop.example/cart", language="cs",
    )  # fmt: skip
    client = signed_in(sales_agent)
    url = conversation_url("inbox_conversation_json", started.conversation)

    data = client.get(url).json()
    assert data["conversation"]["id"] == started.conversation.id
    assert [m["body"] for m in data["messages"]][0] == "Hi"
    assert data["visitor"] | {"since": None} == {
        "name": "Olga",
        "email": "olga@example.cz",
        "language": "cs",
        "language_name": "Czech",
        "page_url": "https://shop.example/cart",
        "first_page": "https://shop.example/cart",
        "group_name": "Sales",
        "since": None,
        "time_zone": "",
    }
    # It should give only the newer messages after a seq (a resync).
    last = data["messages"][-1]["seq"]
    assert client.get(url, {"after": last}).json()["messages"] == []
    assert client.get(url, {"after": "x"}).status_code == 400
    # It should name the visitor's zone when their browser told it (the page shows their clock).
    visitor_writes(shop, "Later", client_id="d2", time_zone="Europe/Lisbon", token=started.visitor_token)
    assert client.get(url).json()["visitor"]["time_zone"] == "Europe/Lisbon"


# --- replies --------------------------------------------------------------------------------------


def test_a_reply_is_stored_once_whatever_the_retries(sales_agent, sales_chat):
    client = signed_in(sales_agent)

    first = reply(client, sales_chat, client_id="op-1")
    again = reply(client, sales_chat, client_id="op-1")

    # It should answer 201, then 200 with the same message, and store one.
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["author"] == "operator" and first.json()["operator"]["id"] == sales_agent.id
    assert Message.objects.filter(conversation=sales_chat, client_id="op-1").count() == 1
    # The first reply takes the conversation and ends the visitor's wait.
    sales_chat.refresh_from_db()
    assert sales_chat.assignee_id == sales_agent.id and sales_chat.waiting_since is None


@pytest.mark.parametrize(
    ("body", "client_id", "field"),
    [("", "ok-1", "body"), ("   \n ", "ok-2", "body"), ("x" * 4001, "ok-3", "body"), ("Hi", "", "client_id"),
     ("Hi", "auto:busy:1", "client_id"), ("Hi", "has space", "client_id"), ("bell \x07", "ok-4", "body")],
)  # fmt: skip
def test_a_reply_the_rules_refuse_is_a_400_naming_the_field(sales_agent, sales_chat, body, client_id, field):
    response = reply(signed_in(sales_agent), sales_chat, body=body, client_id=client_id)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Message.objects.filter(conversation=sales_chat, author="operator").exists()


def test_a_reply_to_a_closed_conversation_is_a_409(shop, sales_agent, sales_chat):
    services.conversation_close(conversation_id=sales_chat.id, actor=sales_agent)

    assert reply(signed_in(sales_agent), sales_chat).status_code == 409


def test_replies_answer_only_post(sales_agent, sales_chat):
    assert signed_in(sales_agent).get(conversation_url("inbox_reply", sales_chat)).status_code == 405


# --- assign and close ------------------------------------------------------------------------------


def test_assigning_to_a_colleague_and_back_to_nobody(shop, sales_agent, sales_chat):
    colleague = make_operator(account=shop, name="Kolega")
    client = signed_in(sales_agent)
    url = conversation_url("inbox_assign", sales_chat)

    response = client.post(url, {"operator": colleague.id})
    assert response.status_code == 200
    assert response.json()["conversation"]["assignee"]["id"] == colleague.id
    sales_chat.refresh_from_db()
    assert sales_chat.assignee_id == colleague.id

    response = client.post(url, {"operator": ""})
    assert response.status_code == 200 and response.json()["conversation"]["assignee"] is None
    sales_chat.refresh_from_db()
    assert sales_chat.assignee_id is None


def test_assigning_to_someone_not_an_active_colleague_is_a_400(shop, sales_agent, sales_chat):
    stranger = owner_of(make_account(name="Elsewhere"))
    gone = make_operator(account=shop)
    Operator.objects.filter(id=gone.id).update(is_active=False)
    client = signed_in(sales_agent)

    for operator_id in (stranger.id, gone.id, "abc"):
        response = client.post(conversation_url("inbox_assign", sales_chat), {"operator": operator_id})
        assert response.status_code == 400
        assert "operator" in response.json()["fields"]
    sales_chat.refresh_from_db()
    assert sales_chat.assignee_id is None


def test_closing_ends_the_wait_and_moves_it_to_the_closed_list(sales_agent, sales_chat):
    client = signed_in(sales_agent)

    response = client.post(conversation_url("inbox_close", sales_chat))

    assert response.status_code == 200 and response.json()["conversation"]["status"] == "closed"
    assert listed_ids(client, "all") == [] and listed_ids(client, "closed") == [sales_chat.id]
    assert client.get(reverse("dashboard:inbox_count")).json() == {"waiting": 0}


# --- CSRF ----------------------------------------------------------------------------------------------


def test_every_write_needs_the_csrf_token(sales_agent, sales_chat):
    client = signed_in(sales_agent, enforce_csrf_checks=True)
    writes = [
        (conversation_url("inbox_reply", sales_chat), {"body": "Hi", "client_id": "csrf-1"}),
        (conversation_url("inbox_assign", sales_chat), {"operator": sales_agent.id}),
        (conversation_url("inbox_close", sales_chat), {}),
    ]
    for url, data in writes:
        assert client.post(url, data).status_code == 403
    sales_chat.refresh_from_db()
    assert sales_chat.status == "open" and sales_chat.assignee_id is None

    # With the page's token (from its reply form) the same writes work.
    html = client.get(conversation_url("inbox_conversation", sales_chat)).content.decode()
    marker = 'name="csrfmiddlewaretoken" value="'
    token = html[html.index(marker) + len(marker) :].split('"', 1)[0]
    for url, data in writes:
        assert client.post(url, data, headers={"X-CSRFToken": token}).status_code in (200, 201)


# --- counts ------------------------------------------------------------------------------------------------


def test_the_nav_counts_conversations_waiting_for_my_reply(shop, sales_agent, sales_chat, support_chat):
    client = signed_in(sales_agent)

    # It should count what rule 6 lets me open: the sales conversation, not the support one.
    assert client.get(reverse("dashboard:inbox_count")).json() == {"waiting": 1}
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert "<span data-inbox-count>1</span>" in overview
    assert signed_in(owner_of(shop)).get(reverse("dashboard:inbox_count")).json() == {"waiting": 2}

    reply(client, sales_chat)
    assert client.get(reverse("dashboard:inbox_count")).json() == {"waiting": 0}
    assert '<span class="nav-count" hidden>' in client.get(reverse("dashboard:overview")).content.decode()
