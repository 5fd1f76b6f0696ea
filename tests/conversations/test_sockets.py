"""Conversations live on the sockets: the visitor's widget hears its own
conversation only; operator sockets hear what rule 6 lets them open."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import Status
from chatstatus.asgi import router
from conversations import services
from presence import services as presence
from tests.factories import make_account, make_group, make_operator, make_token
from tests.presence.conftest import Socket, token_headers

pytestmark = pytest.mark.django_db(transaction=True)

db = database_sync_to_async


def online(operator) -> None:
    presence.presence_heartbeat(operator=operator, conn_id=f"c{operator.id}", device="s:laptop")
    presence.operator_set_status(operator=operator, status=Status.ONLINE, source="dashboard", device="s:laptop")


async def widget_socket(account, *, token: str | None = None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(router, f"/ws/widget/{account.widget_key}/")
    communicator.scope["client"] = ["198.51.100.9", 50000]
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from(timeout=2))["type"] == "status"
    if token:
        await communicator.send_json_to({"type": "visitor", "token": token})
    return communicator


async def frames_until(communicator: WebsocketCommunicator, kind: str, *, timeout: float = 3) -> dict:
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame["type"] == kind:
            return frame


def start(account, body: str, client_id: str, token=None, group_key=None):
    return services.visitor_conversation_start(
        account_id=account.id, token=token, body=body, client_id=client_id, group_key=group_key
    )


async def test_the_visitors_widget_hears_the_operators_reply_and_nobody_elses():
    account = await db(make_account)()
    agent = await db(make_operator)(account=account)
    await db(online)(agent)
    mine = await db(start)(account, "Hi", "v1")
    theirs = await db(start)(account, "Hello", "v2")
    visitor = await widget_socket(account, token=mine.visitor_token)
    other = await widget_socket(account, token=theirs.visitor_token)
    anonymous = await widget_socket(account)

    await db(services.operator_message_post)(
        conversation_id=mine.conversation.id, operator=agent, body="How can I help?", client_id="op1"
    )
    reply = await frames_until(visitor, "message")
    assert reply["message"]["body"] == "How can I help?"
    assert reply["message"]["operator"]["display_name"] == agent.display_name
    assert await other.receive_nothing(timeout=0.3)
    assert await anonymous.receive_nothing(timeout=0.1)
    for communicator in (visitor, other, anonymous):
        await communicator.disconnect()


async def test_a_token_of_another_account_hears_nothing():
    account, elsewhere = await db(make_account)(), await db(make_account)()
    agent = await db(make_operator)(account=account)
    started = await db(start)(account, "Hi", "x1")
    spy = await widget_socket(elsewhere, token=started.visitor_token)
    await db(services.operator_message_post)(
        conversation_id=started.conversation.id, operator=agent, body="secret", client_id="op"
    )
    assert await spy.receive_nothing(timeout=0.3)
    await spy.disconnect()


async def test_operator_sockets_hear_what_rule_6_lets_them_open():
    account = await db(make_account)()
    owner = await db(lambda: account.operators.get(role="owner"))()
    sales = await db(make_operator)(account=account)
    support = await db(make_operator)(account=account)
    await db(make_group)(account=account, key="sales", members=[sales])
    await db(make_group)(account=account, key="support", members=[support])
    sockets = {}
    for name, operator in (("owner", owner), ("sales", sales), ("support", support)):
        sockets[name] = Socket(token_headers(await db(make_token)(operator)))
        assert await sockets[name].connect()
        await sockets[name].receive_until(lambda m: m["type"] == "hello")

    started = await db(start)(account, "Price of shipping?", "s1", group_key="sales")

    for name in ("owner", "sales"):
        new = await sockets[name].receive_until(lambda m: m["type"] == "conversation")
        assert new["conversation"]["id"] == started.conversation.id
        message = await sockets[name].receive_until(lambda m: m["type"] == "message")
        assert message["message"]["body"] == "Price of shipping?"
    assert await sockets["support"].nothing_more(timeout=0.3)

    # The support agent's typing into a sales conversation goes nowhere.
    await sockets["support"].send({"type": "typing", "conversation_id": started.conversation.id})
    assert await sockets["support"].nothing_more(timeout=0.3)
    for socket in sockets.values():
        await socket.close()


async def test_an_operators_typing_reaches_the_visitor():
    account = await db(make_account)()
    agent = await db(make_operator)(account=account)
    started = await db(start)(account, "Hi", "t1")
    visitor = await widget_socket(account, token=started.visitor_token)
    app = Socket(token_headers(await db(make_token)(agent)))
    assert await app.connect()
    await app.receive_until(lambda m: m["type"] == "hello")
    await app.send({"type": "typing", "conversation_id": started.conversation.id})
    typing = await frames_until(visitor, "typing")
    assert typing["operator"]["id"] == agent.id
    await app.send({"type": "typing", "conversation_id": "x"})
    assert (await app.receive_until(lambda m: m["type"] == "error"))["error"] == "invalid_conversation"
    await visitor.disconnect()
    await app.close()


async def test_a_wait_that_begins_or_ends_rides_on_its_message():
    """Operator sockets get one frame per message: the conversation's new
    waiting state comes inside it; a new or taken conversation gets its own
    ``conversation`` frame first (ARCHITECTURE §4)."""
    account = await db(make_account)()
    agent = await db(make_operator)(account=account)
    await db(online)(agent)
    app = Socket(token_headers(await db(make_token)(agent)))
    assert await app.connect()
    await app.receive_until(lambda m: m["type"] == "hello")

    async def frames(count: int) -> list[dict]:
        got = [await app.receive_until(lambda m: m["type"] in ("conversation", "message")) for _ in range(count)]
        assert await app.nothing_more(timeout=0.3)
        return got

    started = await db(start)(account, "Hi", "w1")
    new, first = await frames(2)
    assert new["type"] == "conversation" and new["conversation"]["waiting_since"] is not None
    assert first["type"] == "message" and "conversation" not in first

    reply = lambda client_id: services.operator_message_post(  # noqa: E731
        conversation_id=started.conversation.id, operator=agent, body="Hello", client_id=client_id
    )
    await db(reply)("r1")
    taken, answer = await frames(2)
    assert taken["type"] == "conversation" and taken["conversation"]["assignee"]["id"] == agent.id
    assert taken["conversation"]["waiting_since"] is None and "conversation" not in answer

    await db(services.visitor_message_post)(
        account_id=account.id,
        visitor_id=started.conversation.visitor_id,
        conversation_id=started.conversation.id,
        body="Still there?",
        client_id="w2",
    )
    (asked,) = await frames(1)
    assert asked["message"]["body"] == "Still there?"
    assert asked["conversation"]["waiting_since"] is not None

    await db(reply)("r2")
    (answered,) = await frames(1)
    assert answered["message"]["body"] == "Hello"
    assert answered["conversation"]["waiting_since"] is None

    await db(reply)("r3")
    (more,) = await frames(1)
    assert "conversation" not in more  # nothing about the conversation changed
    await app.close()
