"""/api/v1/conversations: the inbox of a phone or an integration — list, open,
reply, assign, close — with rule 6 deciding what an agent sees.

Most tests run in one rolled-back transaction; those about what happens after
a commit (a retried reply meeting the committed row, the publishing) use real
commits (``conversations_db``), as in production.
"""

import asyncio
import itertools
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from api.throttles import OperatorMessageRateThrottle
from conversations import inputs, services
from conversations.models import Conversation, Message
from conversations.payloads import ConversationPayload, MessagePayload, conversation_payload, message_payload
from presence import events
from tests.api.conftest import JsonClient, session_client, token_client
from tests.conversations.conftest import conversations_db, go_online, visitor_writes
from tests.factories import make_account, make_group, make_operator

CONVERSATIONS = "/api/v1/conversations"
_client_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def someone_online(agent, django_capture_on_commit_callbacks):
    """An agent in no group is online: every box is, so no automatic offline
    message slips between the messages a test counts. (The chat box is
    refreshed after commit: run that even in a rolled-back test.)"""
    with django_capture_on_commit_callbacks(execute=True):
        go_online(agent)


def url(conversation, tail: str = "") -> str:
    return f"{CONVERSATIONS}/{conversation.id}{tail}"


def started(account, body: str = "Hello?", **fields):
    """A visitor's first message: a new visitor, a new conversation."""
    return visitor_writes(account, body, client_id=f"v{next(_client_ids)}", **fields)


def a_conversation(account, body: str = "Hello?", **fields) -> Conversation:
    return started(account, body, **fields).conversation


def visitor_writes_again(first, body: str = "Still there?") -> None:
    """The visitor writes into that conversation (the widget's messages endpoint), closed or not."""
    conversation = first.conversation
    services.visitor_message_post(
        account_id=conversation.account_id,
        visitor_id=conversation.visitor_id,
        conversation_id=conversation.id,
        body=body,
        client_id=f"v{next(_client_ids)}",
    )


def reply(client: JsonClient, conversation, body: str = "Hi, how can I help?", client_id: str | None = None):
    return client.post(
        url(conversation, "/messages"), {"body": body, "client_id": client_id or f"op-{next(_client_ids)}"}
    )


def stored(conversation) -> Conversation:
    return Conversation.objects.select_related("group", "visitor", "assignee").get(id=conversation.id)


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["results"]]


# --- the list -------------------------------------------------------------------------------------


def test_the_list_shows_conversations_newest_activity_first(as_admin, account, clock):
    first = started(account, "First")
    clock.shift(10)
    second = a_conversation(account, "Second")
    clock.shift(10)
    visitor_writes_again(first, "First again")

    page = as_admin.get(CONVERSATIONS).json()

    # It should put the conversation written to last on top, each exactly as every transport shows it.
    assert ids(page) == [first.conversation.id, second.id]
    assert page["results"] == [conversation_payload(stored(first.conversation)), conversation_payload(stored(second))]
    assert set(page["results"][0]) == set(ConversationPayload.__annotations__)
    assert page["next"] is None


def test_the_list_filters_by_status_and_assignee(as_admin, admin, agent, account):
    mine, theirs, nobodys, closed = (a_conversation(account, body) for body in ("Mine", "Theirs", "Nobody's", "Done"))
    reply(as_admin, mine)
    reply(token_client(agent), theirs)
    services.conversation_close(conversation_id=closed.id, actor=admin)

    def listed(**query) -> set[int]:
        response = as_admin.get(CONVERSATIONS, query)
        assert response.status_code == 200, response.content
        return set(ids(response.json()))

    # It should narrow the list by each filter, and by both together.
    assert listed(status="open") == {mine.id, theirs.id, nobodys.id}
    assert listed(status="closed") == {closed.id}
    assert listed(assignee="me") == {mine.id}
    assert listed(assignee=str(agent.id)) == {theirs.id}
    assert listed(assignee="none") == {nobodys.id, closed.id}
    assert listed(assignee="none", status="open") == {nobodys.id}
    assert listed() == {mine.id, theirs.id, nobodys.id, closed.id}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"status": ""}, "status"),
        ({"status": "OPEN"}, "status"),
        ({"assignee": "somebody"}, "assignee"),
        ({"assignee": ""}, "assignee"),
        ({"assignee": "0"}, "assignee"),
        ({"assignee": "007"}, "assignee"),
        ({"assignee": "-3"}, "assignee"),
        ({"assignee": " 3"}, "assignee"),
        ({"assignee": str(2**63)}, "assignee"),
        ({"assignee": "9" * 30}, "assignee"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
    ],
)
def test_bad_list_filters_are_named(as_agent, query, field):
    response = as_agent.get(CONVERSATIONS, query)

    # It should refuse the filter by name rather than quietly list everything.
    assert response.status_code == 400
    assert field in response.json()


def test_the_list_is_paginated_with_a_cursor(as_owner, account, clock):
    for n in range(7):
        a_conversation(account, f"Visitor {n}")
        clock.shift(1)
    seen, page_url = [], f"{CONVERSATIONS}?page_size=3"
    while page_url:
        page = as_owner.get(page_url).json()
        assert len(page["results"]) <= 3
        seen += ids(page)
        page_url = page["next"]

    # It should walk every conversation once, newest activity first.
    assert seen == list(Conversation.objects.order_by("-last_message_at", "-id").values_list("id", flat=True))
    assert len(seen) == 7


def test_a_forged_cursor_is_not_found(as_owner, account):
    a_conversation(account)
    assert as_owner.get(CONVERSATIONS, {"cursor": "cD0yMDI2LTEzLTQ1"}).status_code == 404


def test_the_list_costs_the_same_queries_for_many_conversations(as_agent, account, django_assert_max_num_queries):
    colleague = make_operator(account=account)
    for n in range(12):
        reply(token_client(colleague), a_conversation(account, f"Visitor {n}"), client_id=f"r{n}")

    # The token (and its first use), the agent's groups, one page: never a query per conversation.
    with django_assert_max_num_queries(4):
        assert len(as_agent.get(CONVERSATIONS).json()["results"]) == 12


# --- one conversation ------------------------------------------------------------------------------


def test_an_operator_opens_a_conversation_with_its_messages_by_seq(as_agent, account):
    first = started(account, "Do you ship to Brno?")
    reply(as_agent, first.conversation, "We do.")
    visitor_writes_again(first, "Great, thanks")

    body = as_agent.get(url(first.conversation)).json()

    # It should be the conversation's payload with every message, oldest first.
    messages = body.pop("messages")
    assert body == conversation_payload(stored(first.conversation))
    assert [m["seq"] for m in messages] == [1, 2, 3]
    assert [m["author"] for m in messages] == ["visitor", "operator", "visitor"]
    stored_messages = Message.objects.filter(conversation=first.conversation).select_related("operator")
    assert messages == [message_payload(m) for m in stored_messages.order_by("seq")]
    assert set(messages[1]) == set(MessagePayload.__required_keys__)  # "faq" is on bot answers only
    assert messages[1]["operator"]["display_name"] == "Alan Agent"


def test_after_gives_only_the_newer_messages(as_agent, account):
    first = started(account, "One")
    visitor_writes_again(first, "Two")
    visitor_writes_again(first, "Three")

    newer = as_agent.get(url(first.conversation), {"after": "1"}).json()["messages"]
    none_newer = as_agent.get(url(first.conversation), {"after": "3"}).json()["messages"]

    # It should resynchronise a client from the last seq it has.
    assert [m["body"] for m in newer] == ["Two", "Three"]
    assert none_newer == []


@pytest.mark.parametrize("after", ["-1", "one", "1.5", " 2", "", str(2**31)])
def test_a_bad_after_is_named(as_agent, account, after):
    response = as_agent.get(url(a_conversation(account)), {"after": after})
    assert response.status_code == 400
    assert "after" in response.json()


@pytest.mark.parametrize("conversation_id", ["0", "abc", "-1", str(2**63), "1.0"])
def test_an_id_that_cannot_be_a_conversation_is_not_found(as_admin, conversation_id):
    assert as_admin.get(f"{CONVERSATIONS}/{conversation_id}").status_code == 404


# --- replies --------------------------------------------------------------------------------------------


@conversations_db
def test_a_reply_is_created_once_whatever_the_retries(as_agent, account):
    conversation = a_conversation(account)

    first = reply(as_agent, conversation, "On my way", client_id="phone-1")
    retry = reply(as_agent, conversation, "On my way", client_id="phone-1")

    # It should answer the retry with the message stored the first time, never a second one.
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json() == first.json()
    assert Message.objects.filter(conversation=conversation, client_id="phone-1").count() == 1
    message = Message.objects.select_related("operator").get(conversation=conversation, client_id="phone-1")
    assert first.json() == message_payload(message)
    assert (first.json()["author"], first.json()["kind"], first.json()["seq"]) == ("operator", "text", 2)


def test_the_first_reply_takes_the_conversation_and_the_second_does_not(as_admin, as_agent, admin, account):
    conversation = a_conversation(account)
    assert stored(conversation).waiting_since is not None

    assert reply(as_admin, conversation, "I'll take it").status_code == 201
    assert reply(as_agent, conversation, "Me too").status_code == 201

    # It should keep the first replier as assignee; nobody waits any more.
    after = stored(conversation)
    assert after.assignee_id == admin.id
    assert after.waiting_since is None
    assert as_agent.get(url(conversation)).json()["assignee"]["id"] == admin.id


@conversations_db
def test_a_reply_reaches_the_visitor_and_the_operators(as_agent, account):
    conversation = a_conversation(account)
    # Where the operators' sockets and the visitor's widgets listen (each filters further).
    kinds = {"conversation.frame": "operators", "widget.visitor": "widgets"}

    async def reply_and_listen() -> tuple[dict, set[str]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        for group in (events.account_group(account.id), events.widget_group(account.id)):
            await layer.group_add(group, channel)
        answer = await sync_to_async(reply)(as_agent, conversation, "Hello from the phone")
        message, reached = answer.json(), set()
        while reached != set(kinds.values()):
            event = await asyncio.wait_for(layer.receive(channel), timeout=5)
            frame = json.loads(event.get("text", "{}"))
            if event["type"] in kinds and frame.get("type") == "message" and frame["message"] == message:
                reached.add(kinds[event["type"]])
        return message, reached

    message, reached = async_to_sync(reply_and_listen)()

    # It should be published after commit, as the API answered it, to the operators and the visitor.
    assert reached == {"operators", "widgets"}
    assert message["body"] == "Hello from the phone"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": "x1"}, "body"),
        ({"body": "", "client_id": "x1"}, "body"),
        ({"body": "   \n ", "client_id": "x1"}, "body"),
        ({"body": None, "client_id": "x1"}, "body"),
        ({"body": 42, "client_id": "x1"}, "body"),
        ({"body": "x" * 4001, "client_id": "x1"}, "body"),
        ({"body": "bell\x07", "client_id": "x1"}, "body"),
        ({"body": "nul\x00", "client_id": "x1"}, "body"),
        ({"body": "Hi"}, "client_id"),
        ({"body": "Hi", "client_id": ""}, "client_id"),
        ({"body": "Hi", "client_id": "has space"}, "client_id"),
        ({"body": "Hi", "client_id": "x" * 65}, "client_id"),
        ({"body": "Hi", "client_id": 7}, "client_id"),
        ({"body": "Hi", "client_id": "auto:busy:1"}, "client_id"),
    ],
)
def test_a_bad_reply_is_named_with_the_widgets_words(as_agent, account, body, field):
    conversation = a_conversation(account)

    response = as_agent.post(url(conversation, "/messages"), body)

    # It should refuse with the messages the widget gives for the same mistake, and store nothing.
    assert response.status_code == 400
    expected: dict[str, list[str]] = {}
    inputs.body_clean(body.get("body"), expected)
    inputs.client_id_clean(body.get("client_id"), expected)
    assert response.json() == expected
    assert field in expected
    assert not Message.objects.filter(conversation=conversation, author="operator").exists()


def test_a_reply_keeps_line_breaks_and_trims_the_rest(as_agent, account):
    conversation = a_conversation(account)
    message = reply(as_agent, conversation, "  Line one\r\nLine two\t \n").json()
    assert message["body"] == "Line one\nLine two"


@pytest.mark.parametrize("body", [[1, 2], "Hi", None, 5])
def test_a_reply_that_is_no_object_is_refused(as_agent, account, body):
    conversation = a_conversation(account)
    response = as_agent.post(url(conversation, "/messages"), body)
    assert response.status_code == 400
    assert not Message.objects.filter(conversation=conversation, author="operator").exists()


# --- assign and close --------------------------------------------------------------------------------


def test_an_operator_assigns_a_colleague_and_then_nobody(as_agent, admin, account):
    conversation = a_conversation(account)

    to_admin = as_agent.post(url(conversation, "/assign"), {"operator": admin.id})
    to_nobody = as_agent.post(url(conversation, "/assign"), {"operator": None})

    # It should answer the conversation as it is now, each time.
    assert to_admin.status_code == 200
    assert to_admin.json()["assignee"] == {"id": admin.id, "display_name": "Ada Admin", "avatar_url": None}
    assert to_nobody.status_code == 200
    assert to_nobody.json() == conversation_payload(stored(conversation))
    assert stored(conversation).assignee_id is None


def test_an_operator_of_another_account_is_no_assignee(as_admin, account, stranger):
    conversation = a_conversation(account)
    former = make_operator(account=account)
    former.is_active = False
    former.save(update_fields=["is_active"])

    for operator in (stranger.id, former.id, 2**62):
        response = as_admin.post(url(conversation, "/assign"), {"operator": operator})

        # It should name the field and change nothing.
        assert response.status_code == 400
        assert list(response.json()) == ["operator"]
    assert stored(conversation).assignee_id is None


@pytest.mark.parametrize("body", [{}, {"operator": "me"}, {"operator": 0}, {"operator": True}, {"operator": 1.5}])
def test_a_bad_assignee_is_named(as_admin, account, body):
    response = as_admin.post(url(a_conversation(account), "/assign"), body)
    assert response.status_code == 400
    assert "operator" in response.json()


@conversations_db
def test_a_closed_conversation_takes_no_reply_until_the_visitor_writes_again(as_agent, account):
    first = started(account)
    stored_reply = reply(as_agent, first.conversation, "Anything else?", client_id="before-close").json()

    closed = as_agent.post(url(first.conversation, "/close"))
    refused = reply(as_agent, first.conversation, "Bye", client_id="after-close")
    retried = reply(as_agent, first.conversation, "Anything else?", client_id="before-close")

    # It should close it, refuse a new reply with a code a client can test, and still answer a retry.
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["waiting_since"] is None
    assert refused.status_code == 400
    assert refused.json()["code"] == "conversation_closed" and refused.json()["detail"]
    assert (retried.status_code, retried.json()) == (200, stored_reply)
    assert not Message.objects.filter(client_id="after-close").exists()

    # The visitor writes: it should be open again and take replies.
    visitor_writes_again(first, "One more question")
    assert as_agent.get(url(first.conversation)).json()["status"] == "open"
    assert reply(as_agent, first.conversation, "Sure", client_id="after-reopen").status_code == 201


def test_closing_twice_changes_nothing(as_admin, account):
    conversation = a_conversation(account)
    first = as_admin.post(url(conversation, "/close")).json()
    again = as_admin.post(url(conversation, "/close"))
    assert again.status_code == 200
    assert again.json() == first


# --- rule 6 and other accounts ---------------------------------------------------------------------------


@pytest.fixture
def desks(account, admin):
    """Groups "sales" and "support", an agent in each, an agent in none, and a conversation for each desk."""
    sales_agent = make_operator(account=account, name="Sam Sales")
    support_agent = make_operator(account=account, name="Sue Support")
    make_group(account=account, key="sales", members=[sales_agent])
    make_group(account=account, key="support", members=[support_agent])
    return {
        "sales_agent": sales_agent,
        "support_agent": support_agent,
        "free_agent": make_operator(account=account, name="Fred Free"),
        "sales": a_conversation(account, "Price?", group_key="sales"),
        "support": a_conversation(account, "It broke", group_key="support"),
        "account": a_conversation(account, "Hello?"),
    }


def listed_ids(client) -> set[int]:
    return set(ids(client.get(CONVERSATIONS).json()))


@pytest.mark.parametrize("via", [token_client, session_client], ids=["token", "session"])
def test_an_agent_of_sales_never_sees_a_support_conversation(desks, via):
    sales = via(desks["sales_agent"])
    support = desks["support"]

    # It should leave it out of the list and answer 404 everywhere, as if it did not exist.
    assert listed_ids(sales) == {desks["sales"].id}
    assert sales.get(url(support)).status_code == 404
    assert reply(sales, support).status_code == 404
    assert sales.post(url(support, "/assign"), {"operator": desks["sales_agent"].id}).status_code == 404
    assert sales.post(url(support, "/close")).status_code == 404
    after = stored(support)
    assert (after.status, after.assignee_id, after.messages.filter(author="operator").count()) == ("open", None, 0)


def test_admins_see_every_conversation_and_agents_in_no_group_too(desks, as_admin):
    everything = {desks["sales"].id, desks["support"].id, desks["account"].id}
    assert listed_ids(as_admin) == everything
    assert listed_ids(token_client(desks["free_agent"])) == everything
    assert listed_ids(token_client(desks["support_agent"])) == {desks["support"].id}
    assert as_admin.get(url(desks["support"])).status_code == 200


def test_an_agent_sees_a_conversation_of_another_group_once_assigned_to_it(desks, as_admin):
    sales_agent = token_client(desks["sales_agent"])
    support = desks["support"]
    as_admin.post(url(support, "/assign"), {"operator": desks["sales_agent"].id})

    # It should be theirs to open and answer, and appear for "assignee=me".
    assert listed_ids(sales_agent) == {desks["sales"].id, support.id}
    assert set(ids(sales_agent.get(CONVERSATIONS, {"assignee": "me"}).json())) == {support.id}
    assert reply(sales_agent, support).status_code == 201


def test_another_accounts_conversation_is_not_found(as_owner, account, stranger):
    theirs = a_conversation(stranger.account, "Secret")
    mine = a_conversation(account)

    # It should never be listed nor found, whoever's token or filter asks.
    assert listed_ids(as_owner) == {mine.id}
    assert ids(as_owner.get(CONVERSATIONS, {"assignee": str(stranger.id)}).json()) == []
    assert as_owner.get(url(theirs)).status_code == 404
    assert reply(as_owner, theirs).status_code == 404
    assert as_owner.post(url(theirs, "/assign"), {"operator": None}).status_code == 404
    assert as_owner.post(url(theirs, "/close")).status_code == 404
    assert (stored(theirs).status, stored(theirs).messages.filter(author="operator").count()) == ("open", 0)


# --- authentication and limits -------------------------------------------------------------------------


def test_every_conversation_route_works_with_a_browser_session(agent, account):
    client = session_client(agent)
    conversation = a_conversation(account)
    assert client.get(CONVERSATIONS).status_code == 200
    assert client.get(url(conversation)).status_code == 200
    assert reply(client, conversation).status_code == 201
    assert client.post(url(conversation, "/assign"), {"operator": agent.id}).status_code == 200
    assert client.post(url(conversation, "/close")).status_code == 200


def test_anonymous_callers_are_asked_to_authenticate(anonymous, account):
    conversation = a_conversation(account)
    for method, path in [
        ("get", CONVERSATIONS),
        ("get", url(conversation)),
        ("post", url(conversation, "/messages")),
        ("post", url(conversation, "/assign")),
        ("post", url(conversation, "/close")),
    ]:
        assert getattr(anonymous, method)(path, {}).status_code == 401, path


def test_a_fast_human_operator_is_never_limited():
    throttle = OperatorMessageRateThrottle()
    # It should let through at least two replies a second, sustained for a minute.
    assert throttle.num_requests / throttle.duration >= 2
    assert throttle.duration <= 60


def test_a_flood_of_replies_is_limited_per_operator(as_agent, admin, account, monkeypatch):
    monkeypatch.setattr(OperatorMessageRateThrottle, "rate", "3/min")
    conversation = a_conversation(account)
    answers = [reply(as_agent, conversation, f"Spam {n}").status_code for n in range(4)]

    # It should refuse the fourth with Retry-After, and not count it against a colleague.
    assert answers == [201, 201, 201, 429]
    limited = reply(as_agent, conversation, "Spam 5")
    assert int(limited["Retry-After"]) > 0
    assert reply(token_client(admin), conversation, "Sorry about that").status_code == 201


def test_the_limit_is_the_operator_s_whatever_device_replies(agent, account, monkeypatch):
    monkeypatch.setattr(OperatorMessageRateThrottle, "rate", "2/min")
    conversation = a_conversation(account)
    phone, laptop = token_client(agent, device="phone"), session_client(agent)

    answers = [reply(client, conversation, f"From {n}").status_code for n, client in enumerate([phone, laptop, phone])]

    # It should count both devices' replies against one budget.
    assert answers == [201, 201, 429]


def test_a_new_account_has_no_conversations(as_owner):
    assert as_owner.get(CONVERSATIONS).json() == {"next": None, "previous": None, "results": []}


def test_a_deleted_operator_s_replies_stay_without_an_author(as_admin, admin, account):
    conversation = a_conversation(account)
    colleague = make_operator(account=account, name="Leaving Soon")
    reply(token_client(colleague), conversation, "Hi")
    colleague.delete()

    messages = as_admin.get(url(conversation)).json()["messages"]

    # It should keep the reply, naming no operator.
    assert [(m["author"], m["operator"]) for m in messages] == [("visitor", None), ("operator", None)]


def test_conversations_of_a_visitor_who_gave_an_email_show_it(as_admin, account):
    conversation = a_conversation(account, "Call me", name="Vera Visitor", email="vera@example.com")
    visitor = as_admin.get(url(conversation)).json()["visitor"]
    assert visitor == {"id": conversation.visitor_id, "name": "Vera Visitor", "email": "vera@example.com"}


def test_the_automatic_offline_message_is_shown_as_such(as_stranger, stranger):
    conversation = a_conversation(stranger.account)  # nobody of that account is online

    messages = as_stranger.get(url(conversation)).json()["messages"]

    # It should show the visitor's message, then the automatic one asking for an e-mail.
    assert [(m["author"], m["kind"], m["operator"], m["asks_email"]) for m in messages] == [
        ("visitor", "text", None, False),
        ("system", "offline", None, True),
    ]
    assert messages[1]["client_id"].startswith("auto:")


def test_one_account_s_limit_is_not_another_s(monkeypatch, account):
    monkeypatch.setattr(OperatorMessageRateThrottle, "rate", "1/min")
    elsewhere = make_account()
    mine, theirs = make_operator(account=account), make_operator(account=elsewhere)
    assert reply(token_client(mine), a_conversation(account), "One").status_code == 201
    assert reply(token_client(theirs), a_conversation(elsewhere), "One").status_code == 201
