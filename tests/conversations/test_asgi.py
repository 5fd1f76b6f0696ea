"""conversations.asgi serves a visitor's message on the event loop, with the
view's rules and answers; whatever it does not serve reaches Django whole."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.core import mail

from accounts.models import BotMode
from chatstatus import adb
from chatstatus.asgi import django_asgi_app
from conversations import asgi as conversations_asgi
from conversations.asgi import with_visitor_messages
from conversations.models import Conversation, Message
from presence import events
from presence import services as presence_services
from presence.store import get_store
from tests.conversations.conftest import conversations_db, go_online, visitor_writes
from tests.factories import make_account, make_operator
from tests.widget.helpers import DJANGO_ONLY, HOST, ORIGIN, asgi_request
from widget.hub import widget_hub

pytestmark = [conversations_db, pytest.mark.production_only]  # the asyncio pool is PostgreSQL's

router = django_asgi_app
fast = with_visitor_messages(django_asgi_app)
db = database_sync_to_async


@pytest.fixture
def chat(account, agent):
    """An online box, and a visitor with an open conversation: (account, conversation, token)."""
    go_online(agent)
    started = visitor_writes(account, "Hi", client_id="first")
    return account, started.conversation, started.visitor_token


async def post(app, account, conversation_id, payload, *, token, raw=None, address="203.0.113.5", origin=ORIGIN):
    headers = [HOST, (b"content-type", b"application/json")]
    if origin is not None:
        headers.append(origin)
    if token is not None:
        headers.append((b"x-visitor-token", token.encode()))
    path = f"/widget/v1/{account.widget_key}/conversations/{conversation_id}/messages"
    body = raw if raw is not None else json.dumps(payload).encode()
    return await asgi_request(app, "POST", path, headers, body, address=address)


def comparable(response: dict) -> dict:
    """The answer without what differs between two messages (ids, seq, times)."""
    headers = {name: value for name, value in response["headers"].items() if name not in DJANGO_ONLY}
    headers.pop(b"content-length", None)
    vary = {part.strip().lower() for part in headers.pop(b"vary", "").split(",") if part.strip()}
    body = json.loads(response["body"])
    if "id" in body:
        body = {**body, "id": 0, "seq": 0, "client_id": "", "body": "", "created_at": ""}
    return {**response, "body": body, "headers": headers, "vary": vary - {"accept-language", "cookie"}}


def messages_of(conversation_id: int) -> list[tuple[int, str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("seq")
        .values_list("seq", "author", "kind", "client_id")
    )


async def test_a_message_is_answered_as_the_django_view_answers_it(chat):
    account, conversation, token = chat

    through_django = await post(router, account, conversation.id, {"body": "One", "client_id": "d1"}, token=token)
    served_here = await post(fast, account, conversation.id, {"body": "Two", "client_id": "f1"}, token=token)

    assert served_here["status"] == through_django["status"] == 201
    assert comparable(served_here) == comparable(through_django)
    answer = json.loads(served_here["body"])
    assert (answer["seq"], answer["body"], answer["client_id"], answer["author"]) == (3, "Two", "f1", "visitor")
    stored = await db(messages_of)(conversation.id)
    assert stored == [(1, "visitor", "text", "first"), (2, "visitor", "text", "d1"), (3, "visitor", "text", "f1")]


async def test_a_retry_with_the_same_client_id_answers_the_first_message_and_stores_nothing(chat):
    account, conversation, token = chat

    first = await post(fast, account, conversation.id, {"body": "Once", "client_id": "again"}, token=token)
    retry = await post(fast, account, conversation.id, {"body": "Once", "client_id": "again"}, token=token)

    assert (first["status"], retry["status"]) == (201, 200)
    assert json.loads(retry["body"]) == json.loads(first["body"])
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first", "again"]


async def test_a_retry_publishes_the_stored_message_again(chat, published):
    account, conversation, token = chat
    first = await post(fast, account, conversation.id, {"body": "Once", "client_id": "again"}, token=token)
    published.clear()

    retry = await post(fast, account, conversation.id, {"body": "Once", "client_id": "again"}, token=token)

    assert (first["status"], retry["status"]) == (201, 200)
    # Its first publish may have died with its process: the operators hear it again.
    heard = [json.loads(sent["text"]) for _group, sent in published if sent["type"] == "conversation.frame"]
    assert [(frame["type"], frame.get("message", {}).get("client_id")) for frame in heard] == [
        ("conversation", None),
        ("message", "again"),
    ]


async def test_its_statements_are_counted_in_the_database_metrics(chat):
    from chatstatus.metrics import DB_QUERIES, DB_QUERY_SECONDS

    account, conversation, token = chat
    await post(fast, account, conversation.id, {"body": "warm", "client_id": "w"}, token=token)  # the pool opened
    queries, timed = DB_QUERIES.labels(vendor="postgresql"), DB_QUERY_SECONDS.labels(vendor="postgresql")
    before = (queries._value.get(), timed._sum.get())

    answer = await post(fast, account, conversation.id, {"body": "Counted?", "client_id": "m"}, token=token)

    assert answer["status"] == 201
    # The row lock, then the update and the insert as one statement.
    assert queries._value.get() - before[0] == 2
    assert timed._sum.get() > before[1]


async def test_a_message_ends_up_as_the_services_path_leaves_it(chat, published):
    account, conversation, token = chat
    # The operator answered: the visitor's next message begins a new wait, with its busy timer.
    await db(lambda: Conversation.objects.filter(id=conversation.id).update(waiting_since=None, waiting_seq=None))()
    await db(get_store().timer_cancel)(name=f"busy:{conversation.id}")

    answer = await post(fast, account, conversation.id, {"body": "Anyone?", "client_id": "wait"}, token=token)

    assert answer["status"] == 201
    stored = await db(Conversation.objects.get)(id=conversation.id)
    message = json.loads(answer["body"])
    assert (stored.last_seq, stored.waiting_seq, stored.status) == (2, 2, "open")
    assert stored.waiting_since.isoformat(timespec="milliseconds").replace("+00:00", "Z") == message["created_at"]
    due_at = stored.waiting_since.timestamp() + 45
    claim = get_store().timers_claim
    assert await db(claim)(now=due_at - 0.5, limit=10, lease=1) == []
    assert [name for name, _until in await db(claim)(now=due_at + 0.5, limit=10, lease=1)] == [
        f"busy:{conversation.id}"
    ]
    # The operators hear it, with the wait it began riding on the frame.
    frames = [json.loads(sent["text"]) for _group, sent in published]
    frames = [frame for frame in frames if frame["type"] == "message" and frame["message"]["client_id"] == "wait"]
    assert frames
    assert all(frame["conversation"]["waiting_since"] == message["created_at"] for frame in frames)


async def test_an_offline_box_answers_with_the_offline_message_and_emails_the_admins(account):
    started = await db(visitor_writes)(account, "Hi", client_id="first")  # nobody online: offline
    await db(lambda: Conversation.objects.filter(id=started.conversation.id).update(offline_notified=False))()
    mail.outbox.clear()

    answer = await post(
        fast, account, started.conversation.id, {"body": "Hello?", "client_id": "later"}, token=started.visitor_token
    )

    assert answer["status"] == 201
    stored = await db(messages_of)(started.conversation.id)
    assert stored[-2:] == [(3, "visitor", "text", "later"), (4, "system", "offline", "auto:offline:4")]
    assert len(mail.outbox) == 1 and "Hello?" in mail.outbox[0].body


async def test_the_bot_hears_the_message_when_the_account_has_it(chat, monkeypatch):
    account, conversation, token = chat
    await db(lambda: type(account).objects.filter(id=account.id).update(bot_mode=BotMode.FIRST))()
    heard = []
    from conversations.faq import services as faq_services

    monkeypatch.setattr(faq_services, "faq_bot_consider", lambda **kwargs: heard.append(kwargs))

    answer = await post(fast, account, conversation.id, {"body": "Opening hours?", "client_id": "bot"}, token=token)

    assert answer["status"] == 201
    assert [(k["message"].body, k["offline"]) for k in heard] == [("Opening hours?", False)]


@pytest.mark.parametrize(
    "case",
    ["no token", "malformed token", "empty body", "control characters", "not json", "a list", "too long", "too large"],
)
async def test_what_it_does_not_serve_gets_djangos_own_answer(chat, case):
    account, conversation, token = chat
    payload, raw, use_token = {"body": "Hi", "client_id": f"x-{case.replace(' ', '-')}"}, None, token
    if case == "no token":
        use_token = None
    elif case == "malformed token":
        use_token = "short"
    elif case == "empty body":
        payload["body"] = "   "
    elif case == "control characters":
        payload["body"] = "a\x00b"
    elif case == "not json":
        raw = b"{nope"
    elif case == "a list":
        raw = b"[]"
    elif case == "too long":
        payload["body"] = "x" * 4001
    elif case == "too large":
        raw = json.dumps({"body": "x" * 40_000, "client_id": "big"}).encode()

    through_django = await post(router, account, conversation.id, payload, token=use_token, raw=raw)
    served_here = await post(fast, account, conversation.id, payload, token=use_token, raw=raw, address="203.0.113.6")

    assert served_here["status"] == through_django["status"] in (400, 404, 413)
    assert served_here["body"] == through_django["body"]
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first"]


def request_warnings(caplog) -> list[tuple[int, str]]:
    return [(record.status_code, record.getMessage()) for record in caplog.records if record.name == "django.request"]


async def test_a_token_of_another_account_or_conversation_is_not_found(chat, caplog):
    account, conversation, token = chat
    other = await db(make_account)()
    await db(lambda: go_online(make_operator(account=other)))()
    theirs = await db(visitor_writes)(other, "Hi", client_id="theirs")

    foreign_token = await post(
        fast, account, conversation.id, {"body": "x", "client_id": "a"}, token=theirs.visitor_token
    )
    foreign_conversation = await post(
        fast, account, theirs.conversation.id, {"body": "x", "client_id": "b"}, token=token
    )
    wrong_key = await post(fast, other, conversation.id, {"body": "x", "client_id": "c"}, token=token)

    for answer in (foreign_token, foreign_conversation, wrong_key):
        assert (answer["status"], json.loads(answer["body"])) == (404, {"error": "not_found"})
    # Logged as Django logs its own 404s, whoever answered.
    paths = [
        f"/widget/v1/{key}/conversations/{id_}/messages"
        for key, id_ in (
            (account.widget_key, conversation.id),
            (account.widget_key, theirs.conversation.id),
            (other.widget_key, conversation.id),
        )
    ]
    assert request_warnings(caplog) == [(404, f"Not Found: {path}") for path in paths]
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first"]
    assert [row[3] for row in await db(messages_of)(theirs.conversation.id)] == ["theirs"]


async def test_an_origin_the_account_does_not_allow_gets_djangos_answer(chat):
    account, conversation, token = chat
    await db(lambda: type(account).objects.filter(id=account.id).update(allowed_origins=["https://mine.example"]))()
    from widget.selectors import widget_account_forget

    widget_account_forget()
    foreign = (b"origin", b"https://evil.example")

    through_django = await post(
        router, account, conversation.id, {"body": "x", "client_id": "o1"}, token=token, origin=foreign
    )
    served_here = await post(
        fast, account, conversation.id, {"body": "x", "client_id": "o2"}, token=token, origin=foreign
    )

    assert served_here["status"] == through_django["status"] == 404
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first"]


async def test_the_write_limits_count_as_the_view_counts_them(chat, monkeypatch, caplog):
    account, conversation, token = chat
    monkeypatch.setattr(conversations_asgi.views, "VISITOR_LIMITS", ())
    monkeypatch.setattr(
        conversations_asgi.views, "ADDRESS_LIMITS", (conversations_asgi.views.Limit(count=2, period=60),)
    )

    answers = [
        await post(
            fast, account, conversation.id, {"body": "x", "client_id": f"l{n}"}, token=token, address="198.51.100.9"
        )
        for n in range(3)
    ]
    through_django = await post(
        router, account, conversation.id, {"body": "x", "client_id": "l4"}, token=token, address="198.51.100.9"
    )

    assert [answer["status"] for answer in answers] == [201, 201, 429]
    assert comparable(answers[2]) == comparable(through_django)
    assert int(answers[2]["headers"][b"retry-after"]) >= 1
    path = f"/widget/v1/{account.widget_key}/conversations/{conversation.id}/messages"
    assert request_warnings(caplog) == [(429, f"Too Many Requests: {path}")] * 2
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first", "l0", "l1"]


async def test_other_requests_reach_django_unchanged(chat):
    account, conversation, token = chat
    path = f"/widget/v1/{account.widget_key}/conversations/current"
    answers = []
    for app in (fast, router):
        communicator = HttpCommunicator(app, "GET", path, headers=[HOST, (b"x-visitor-token", token.encode())])
        answers.append(await communicator.get_response(timeout=5))

    assert answers[0]["status"] == answers[1]["status"] == 200
    assert json.loads(answers[0]["body"]) == json.loads(answers[1]["body"])


async def test_the_database_out_of_reach_hands_the_message_to_django(chat, monkeypatch):
    account, conversation, token = chat

    async def unreachable():
        raise adb.Unavailable[0]("connection refused")

    monkeypatch.setattr(adb, "pool", unreachable)

    answer = await post(fast, account, conversation.id, {"body": "Still?", "client_id": "via-django"}, token=token)

    assert answer["status"] == 201
    assert [row[3] for row in await db(messages_of)(conversation.id)] == ["first", "via-django"]


class Widget:
    """A widget socket as the hub sees it."""

    async def widget_snapshot(self, event: dict) -> None:
        pass

    async def widget_visitor(self, event: dict) -> None:
        pass


async def test_the_box_comes_from_the_process_s_widget_hub_while_the_account_has_widgets_here(chat, monkeypatch):
    account, conversation, token = chat
    hub, group, widget = widget_hub(), events.widget_group(account.id), Widget()
    await hub.join(group, widget)
    try:
        assert (await hub.snapshot(group, account_id=account.id))["status"] == "online"  # read once, kept

        async def no_store_read(**kwargs):
            raise AssertionError("the chat box was read from the store")

        monkeypatch.setattr(presence_services, "achat_box_read", no_store_read)
        served = await post(fast, account, conversation.id, {"body": "Two", "client_id": "f1"}, token=token)
    finally:
        await hub.leave(group, widget)

    assert served["status"] == 201
    assert await db(messages_of)(conversation.id) == [(1, "visitor", "text", "first"), (2, "visitor", "text", "f1")]
