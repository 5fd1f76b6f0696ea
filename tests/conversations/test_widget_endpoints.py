"""The widget's conversation endpoints as a browser on a customer's site uses
them: a token issued on the first write, idempotent retries, and clear answers
to bad input (nothing already sent is lost)."""

import json

import pytest
from django.test import Client

from conversations.models import Conversation, Message, Visitor
from tests.conversations.conftest import conversations_db, go_online
from tests.factories import make_account, make_operator
from tests.presence.conftest import count_queries

pytestmark = conversations_db


@pytest.fixture
def client():
    return Client(REMOTE_ADDR="203.0.113.5")


def post(client, path: str, data: object, *, token: str | None = None, raw: bytes | None = None, **headers):
    if token:
        headers["HTTP_X_VISITOR_TOKEN"] = token
    body = raw if raw is not None else json.dumps(data)
    return client.post(path, body, content_type="application/json", **headers)


def start(client, account, body="Hello", client_id="c1", **extra):
    return post(
        client, f"/widget/v1/{account.widget_key}/conversations", {"body": body, "client_id": client_id, **extra}
    )


def test_the_first_message_issues_a_token_and_the_conversation_follows_it(client):
    account = make_account()
    go_online(make_operator(account=account))
    first = start(client, account, name="Eva", email="eva@example.com", page_url="https://shop.example/cart")
    assert first.status_code == 201
    answer = first.json()
    token = answer["visitor_token"]
    assert answer["conversation"]["visitor"] == {
        "id": answer["conversation"]["visitor"]["id"],
        "name": "Eva",
        "email": "eva@example.com",
    }
    assert answer["message"]["seq"] == 1 and answer["message"]["author"] == "visitor"
    # Only a digest of the token is stored.
    assert not Visitor.objects.filter(token_hash=token).exists()

    conversation_id = answer["conversation"]["id"]
    more = post(
        client,
        f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages",
        {"body": "Still there?", "client_id": "c2"},
        token=token,
    )
    assert more.status_code == 201 and more.json()["seq"] == 2
    again = post(
        client,
        f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages",
        {"body": "Still there?", "client_id": "c2"},
        token=token,
    )
    assert again.status_code == 200 and again.json()["id"] == more.json()["id"]

    current = client.get(f"/widget/v1/{account.widget_key}/conversations/current?after=1", HTTP_X_VISITOR_TOKEN=token)
    assert current.status_code == 200
    assert [m["body"] for m in current.json()["messages"]] == ["Still there?"]


def test_unknown_and_foreign_tokens_get_404(client):
    account, other = make_account(), make_account()
    token = start(client, account).json()["visitor_token"]
    conversation_id = Conversation.objects.get().id
    assert (
        client.get(f"/widget/v1/{other.widget_key}/conversations/current", HTTP_X_VISITOR_TOKEN=token).status_code
        == 404
    )
    assert client.get(f"/widget/v1/{account.widget_key}/conversations/current").status_code == 404
    assert (
        client.get(f"/widget/v1/{account.widget_key}/conversations/current", HTTP_X_VISITOR_TOKEN="x" * 40).status_code
        == 404
    )
    foreign = post(
        client,
        f"/widget/v1/{other.widget_key}/conversations/{conversation_id}/messages",
        {"body": "hi", "client_id": "z"},
        token=token,
    )
    assert foreign.status_code == 404
    # Another visitor of the same account cannot write into it either.
    stranger = start(Client(REMOTE_ADDR="203.0.113.6"), account, client_id="s1").json()["visitor_token"]
    assert (
        post(
            client,
            f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages",
            {"body": "hi", "client_id": "z"},
            token=stranger,
        ).status_code
        == 404
    )
    assert client.get("/widget/v1/nope/conversations/current", HTTP_X_VISITOR_TOKEN=token).status_code == 404


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"body": "", "client_id": "a"}, "body"),
        ({"body": "   \n ", "client_id": "a"}, "body"),
        ({"body": "x" * 4001, "client_id": "a"}, "body"),
        ({"body": "bell \x07", "client_id": "a"}, "body"),
        ({"body": ["list"], "client_id": "a"}, "body"),
        ({"body": "hi"}, "client_id"),
        ({"body": "hi", "client_id": "x" * 65}, "client_id"),
        ({"body": "hi", "client_id": "auto:busy:1"}, "client_id"),
        ({"body": "hi", "client_id": "a", "email": "not-an-address"}, "email"),
        ({"body": "hi", "client_id": "a", "name": "n" * 101}, "name"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field(client, data, field):
    account = make_account()
    response = post(client, f"/widget/v1/{account.widget_key}/conversations", data)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Message.objects.exists()


def test_broken_json_and_huge_bodies(client):
    account = make_account()
    path = f"/widget/v1/{account.widget_key}/conversations"
    assert post(client, path, None, raw=b"{nope").status_code == 400
    assert post(client, path, None, raw=b'"\\ud800"').status_code == 400
    assert post(client, path, None, raw=b"[1]").status_code == 400
    assert post(client, path, None, raw=json.dumps({"body": "x" * 40000, "client_id": "a"}).encode()).status_code == 413


def test_html_is_stored_and_sent_as_text(client):
    account = make_account()
    body = '<img src=x onerror="alert(1)"> <b>bold</b>'
    answer = start(client, account, body=body).json()
    assert answer["message"]["body"] == body
    assert Message.objects.get(seq=1).body == body


def test_a_flood_from_one_visitor_is_refused_with_retry_after_and_nothing_sent_is_lost(client):
    account = make_account()
    token = start(client, account, client_id="f0").json()["visitor_token"]
    conversation_id = Conversation.objects.get().id
    codes = []
    for n in range(1, 30):
        response = post(
            client,
            f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages",
            {"body": f"m{n}", "client_id": f"f{n}"},
            token=token,
        )
        codes.append(response.status_code)
        if response.status_code == 429:
            assert int(response["Retry-After"]) >= 1
            break
    assert 429 in codes
    accepted = codes.count(201)
    assert Message.objects.filter(author="visitor").count() == accepted + 1


def test_an_office_behind_one_address_is_not_refused(client):
    """Fifty colleagues on one address each start a conversation within the minute."""
    account = make_account()
    codes = [start(client, account, client_id=f"office-{n}").status_code for n in range(50)]
    assert codes == [201] * 50
    assert Conversation.objects.count() == 50


def test_patch_visitor_sets_the_email_and_a_tokenless_patch_issues_one(client):
    account = make_account()
    token = start(client, account).json()["visitor_token"]
    response = client.patch(
        f"/widget/v1/{account.widget_key}/visitor",
        json.dumps({"email": "me@example.com"}),
        content_type="application/json",
        HTTP_X_VISITOR_TOKEN=token,
    )
    assert response.status_code == 200
    assert response.json()["visitor"]["email"] == "me@example.com" and "visitor_token" not in response.json()
    fresh = client.patch(
        f"/widget/v1/{account.widget_key}/visitor", json.dumps({"name": "Jan"}), content_type="application/json"
    )
    assert fresh.status_code == 200 and fresh.json()["visitor_token"]
    bad = client.patch(
        f"/widget/v1/{account.widget_key}/visitor",
        json.dumps({"email": "nope"}),
        content_type="application/json",
        HTTP_X_VISITOR_TOKEN=token,
    )
    assert bad.status_code == 400 and "email" in bad.json()["fields"]


def test_the_browsers_time_zone_is_kept_for_the_visitors_local_time(client):
    account = make_account()
    answer = start(client, account, time_zone="America/Argentina/Buenos_Aires")

    assert answer.status_code == 201
    assert Visitor.objects.get().time_zone == "America/Argentina/Buenos_Aires"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "localtime", "", "Europe/Prague" * 10, 42, ["UTC"], None])
def test_a_time_zone_nobody_knows_is_dropped_and_the_message_still_arrives(client, zone):
    account = make_account()
    answer = start(client, account, body="Hi there", time_zone=zone)

    # It should store the message and no zone: the zone is context, never a reason to refuse.
    assert answer.status_code == 201
    assert Visitor.objects.get().time_zone == ""
    assert Message.objects.get(author="visitor").body == "Hi there"


def test_a_visitor_known_before_their_first_message_gets_its_time_zone_with_it(client):
    account = make_account()
    patched = client.patch(
        f"/widget/v1/{account.widget_key}/visitor", json.dumps({"name": "Jan"}), content_type="application/json"
    )
    token = patched.json()["visitor_token"]

    answer = post(
        client,
        f"/widget/v1/{account.widget_key}/conversations",
        {"body": "Hello", "client_id": "tz-1", "time_zone": "Asia/Tokyo"},
        token=token,
    )

    assert answer.status_code == 201
    assert Visitor.objects.get().time_zone == "Asia/Tokyo"


def test_cors_lets_any_site_send_the_visitor_token_without_credentials(client):
    account = make_account()
    preflight = client.options(
        f"/widget/v1/{account.widget_key}/conversations",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-visitor-token",
    )
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "x-visitor-token" in preflight["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in preflight


def test_a_refused_origin_cannot_write(client):
    account = make_account(allowed_origins=["https://shop.example"])
    path = f"/widget/v1/{account.widget_key}/conversations"
    refused = post(client, path, {"body": "hi", "client_id": "o1"}, HTTP_ORIGIN="https://evil.example")
    assert refused.status_code == 404
    allowed = post(client, path, {"body": "hi", "client_id": "o2"}, HTTP_ORIGIN="https://shop.example")
    assert allowed.status_code == 201


def test_a_visitors_message_costs_three_queries_for_the_whole_request(client):
    account = make_account()
    go_online(make_operator(account=account))
    answer = start(client, account).json()
    token, conversation_id = answer["visitor_token"], answer["conversation"]["id"]

    with count_queries() as queries:
        response = post(
            client,
            f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages",
            {"body": "One more question", "client_id": "q-2"},
            token=token,
        )
    assert response.status_code == 201
    # The widget key is memoised; transaction control is not a query.
    statements = [sql for sql in queries.sql if not sql.upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))]
    assert len(statements) <= 3, statements
