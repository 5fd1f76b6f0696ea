"""api.asgi serves an operator's reply on the event loop, with the API's rules
and answer; whatever it does not serve gets DRF's own answer."""

import json
import time

import pytest
from channels.db import database_sync_to_async

from accounts.models import ApiToken, Operator
from api.asgi import with_operator_replies
from api.throttles import OperatorMessageRateThrottle
from chatstatus import adb
from chatstatus.asgi import django_asgi_app
from conversations.models import Conversation, Message
from presence.store import get_store
from tests.conversations.conftest import conversations_db, go_online, visitor_writes
from tests.factories import make_account, make_group, make_operator, make_token
from tests.widget.helpers import HOST, asgi_request
from widget import ratelimit

pytestmark = [conversations_db, pytest.mark.production_only]  # the asyncio pool is PostgreSQL's

router = django_asgi_app
fast = with_operator_replies(django_asgi_app)
db = database_sync_to_async


@pytest.fixture
def desk():
    """An account with an online agent in "sales", an admin, and a visitor
    waiting in "sales": (conversation, agent's key, admin's key)."""
    account = make_account()
    agent = make_operator(account=account, name="Ann")
    admin = make_operator(account=account, role=Operator.Role.ADMIN, name="Boss")
    make_group(account=account, key="sales", members=[agent])
    make_group(account=account, key="billing")
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="first", group_key="sales", email="eva@example.com")
    return started.conversation, make_token(agent), make_token(admin)


async def reply(
    app, conversation_id, payload, *, key, raw=None, content_type=b"application/json", language=None, accept=None
):
    headers = [HOST, (b"content-type", content_type)]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    if key is not None:
        headers.append((b"authorization", f"Token {key}".encode()))
    if language is not None:
        headers.append((b"accept-language", language.encode()))
    body = raw if raw is not None else json.dumps(payload).encode()
    return await asgi_request(app, "POST", f"/api/v1/conversations/{conversation_id}/messages", headers, body)


def comparable(response: dict) -> dict:
    headers = dict(response["headers"])
    headers.pop(b"content-length", None)
    assert headers.pop(b"expires", "").endswith(" GMT")  # now, to the second
    vary = {part.strip().lower() for part in headers.pop(b"vary", "").split(",") if part.strip()}
    body = json.loads(response["body"])
    if "seq" in body:
        body = {**body, "id": 0, "seq": 0, "client_id": "", "body": "", "created_at": ""}
    return {**response, "body": body, "headers": headers, "vary": vary}


def stored(conversation_id: int) -> list[tuple[int, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("seq")
        .values_list("seq", "author", "client_id")
    )


async def test_a_reply_is_answered_as_the_api_view_answers_it(desk):
    conversation, key, _admin = desk

    through_django = await reply(router, conversation.id, {"body": "Hello", "client_id": "d1"}, key=key, language="cs")
    served_here = await reply(
        fast, conversation.id, {"body": "How can I help?", "client_id": "f1"}, key=key, language="cs"
    )

    assert served_here["status"] == through_django["status"] == 201
    assert comparable(served_here) == comparable(through_django)
    answer = json.loads(served_here["body"])
    assert (answer["seq"], answer["author"], answer["operator"]["display_name"]) == (3, "operator", "Ann")
    assert await db(stored)(conversation.id) == [(1, "visitor", "first"), (2, "operator", "d1"), (3, "operator", "f1")]


async def test_the_first_reply_takes_the_conversation_and_ends_the_wait(desk, published):
    conversation, key, _admin = desk

    answer = await reply(fast, conversation.id, {"body": "Hello", "client_id": "take"}, key=key)

    assert answer["status"] == 201
    after = await db(Conversation.objects.select_related("assignee").get)(id=conversation.id)
    assert (after.assignee.display_name, after.waiting_since, after.waiting_seq, after.last_seq) == (
        "Ann",
        None,
        None,
        2,
    )
    frames = [json.loads(sent["text"]) for _group, sent in published]
    assert [frame["type"] for frame in frames if frame["type"] in ("conversation", "message")][:2] == [
        "conversation",
        "message",
    ]
    assert frames[0]["conversation"]["assignee"]["display_name"] == "Ann"
    # The busy timer is cancelled; the visitor gave an e-mail: the replies are e-mailed later.
    names = [name for name, _until in await db(get_store().timers_claim)(now=10**10, limit=10, lease=1)]
    assert names == [f"email:{conversation.id}"]


async def test_a_retry_answers_the_first_reply_and_stores_nothing(desk):
    conversation, key, _admin = desk

    first = await reply(fast, conversation.id, {"body": "Once", "client_id": "again"}, key=key)
    retry = await reply(fast, conversation.id, {"body": "Once", "client_id": "again"}, key=key)

    assert (first["status"], retry["status"]) == (201, 200)
    assert json.loads(retry["body"]) == json.loads(first["body"])
    assert [row[2] for row in await db(stored)(conversation.id)] == ["first", "again"]


async def test_an_agent_of_another_group_gets_djangos_not_found(desk):
    conversation, _key, _admin = desk
    billing = await db(lambda: conversation.account.groups.get(key="billing"))()
    outsider = await db(lambda: make_operator(account=conversation.account, name="Out"))()
    await db(lambda: billing.memberships.create(operator=outsider))()
    outsider_key = await db(make_token)(outsider)

    through_django = await reply(router, conversation.id, {"body": "x", "client_id": "n1"}, key=outsider_key)
    served_here = await reply(fast, conversation.id, {"body": "x", "client_id": "n2"}, key=outsider_key)

    assert served_here["status"] == through_django["status"] == 404
    assert served_here["body"] == through_django["body"]
    assert [row[2] for row in await db(stored)(conversation.id)] == ["first"]


async def test_an_admin_may_reply_to_any_conversation_of_the_account(desk):
    conversation, _key, admin_key = desk

    answer = await reply(fast, conversation.id, {"body": "Admin here", "client_id": "adm"}, key=admin_key)

    assert answer["status"] == 201 and json.loads(answer["body"])["operator"]["display_name"] == "Boss"


async def test_a_closed_conversation_gets_djangos_refusal_and_a_retry_of_a_stored_reply_its_message(desk):
    conversation, key, _admin = desk
    first = await reply(fast, conversation.id, {"body": "Bye", "client_id": "bye"}, key=key)
    await db(lambda: Conversation.objects.filter(id=conversation.id).update(status="closed"))()

    refused = await reply(fast, conversation.id, {"body": "More", "client_id": "more"}, key=key)
    retried = await reply(fast, conversation.id, {"body": "Bye", "client_id": "bye"}, key=key)

    assert refused["status"] == 400 and json.loads(refused["body"])["code"] == "conversation_closed"
    assert retried["status"] == 200 and json.loads(retried["body"]) == json.loads(first["body"])


@pytest.mark.parametrize(
    "case",
    [
        "no credentials",
        "unknown token",
        "revoked token",
        "form body",
        "not json",
        "empty body",
        "bad client id",
        "accepts html only",
    ],
)
async def test_what_it_does_not_serve_gets_djangos_own_answer(desk, case):
    conversation, key, _admin = desk
    payload, raw, use_key, content_type = {"body": "Hi", "client_id": "x1"}, None, key, b"application/json"
    accept = None
    if case == "no credentials":
        use_key = None
    elif case == "unknown token":
        use_key = "0" * 40
    elif case == "revoked token":
        await db(lambda: ApiToken.objects.all().delete())()
    elif case == "form body":
        raw, content_type = b"body=Hi&client_id=x1", b"application/x-www-form-urlencoded"
    elif case == "not json":
        raw = b"{nope"
    elif case == "empty body":
        payload["body"] = " "
    elif case == "bad client id":
        payload["client_id"] = "no spaces"
    elif case == "accepts html only":
        accept = "text/html"

    sent = {"key": use_key, "raw": raw, "content_type": content_type, "accept": accept}
    through_django = await reply(router, conversation.id, payload, **sent)
    served_here = await reply(fast, conversation.id, payload, **sent)

    assert served_here["status"] == through_django["status"]
    assert served_here["status"] in (400, 401, 406, 415)
    assert served_here["body"] == through_django["body"]


def replies_counted(operator_id: int) -> int:
    """What the reply limit has counted for ``operator_id`` in this window."""
    ((limit, key),) = ratelimit._windows(
        scope=OperatorMessageRateThrottle.scope,
        ident=str(operator_id),
        limits=OperatorMessageRateThrottle().limits(),
        now=time.time(),
    )
    return get_store().count(key, now=time.time(), ttl=limit.period + 1) - 1  # less this read's own count


async def test_replies_are_throttled_once_per_reply_as_the_view_throttles_them(desk, monkeypatch):
    conversation, key, _admin = desk
    monkeypatch.setattr(OperatorMessageRateThrottle, "rate", "2/hour")

    answers = [await reply(fast, conversation.id, {"body": "x", "client_id": f"t{n}"}, key=key) for n in range(3)]
    through_django = await reply(router, conversation.id, {"body": "x", "client_id": "t3"}, key=key)

    assert [answer["status"] for answer in answers] == [201, 201, 429]
    assert comparable(answers[2]) == comparable(through_django)
    assert [row[2] for row in await db(stored)(conversation.id)] == ["first", "t0", "t1"]
    # The refused one was counted once, though Django answered it: 3 in front, 1 through Django.
    operator_id = json.loads(answers[0]["body"])["operator"]["id"]
    assert await db(replies_counted)(operator_id) == 4


async def test_the_token_s_last_use_is_touched_at_most_once_a_minute(desk):
    conversation, key, _admin = desk
    await db(lambda: ApiToken.objects.update(last_used_at=None))()

    await reply(fast, conversation.id, {"body": "a", "client_id": "u1"}, key=key)
    first = await db(lambda: sorted(t for t in ApiToken.objects.values_list("last_used_at", flat=True) if t))()
    await reply(fast, conversation.id, {"body": "b", "client_id": "u2"}, key=key)
    second = await db(lambda: sorted(t for t in ApiToken.objects.values_list("last_used_at", flat=True) if t))()

    assert len(first) == 1 and first == second


async def test_the_database_out_of_reach_hands_the_reply_to_django(desk, monkeypatch):
    conversation, key, _admin = desk

    async def unreachable():
        raise adb.Unavailable[0]("connection refused")

    monkeypatch.setattr(adb, "pool", unreachable)

    answer = await reply(fast, conversation.id, {"body": "Still?", "client_id": "via-django"}, key=key)

    assert answer["status"] == 201
    assert [row[2] for row in await db(stored)(conversation.id)] == ["first", "via-django"]
