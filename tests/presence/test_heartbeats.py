"""Heartbeats live in the presence store only: they never touch the database."""

import pytest
from channels.db import database_sync_to_async

from accounts.models import Status
from presence import services
from tests.factories import make_account, make_operator, make_token
from tests.presence.conftest import Socket, committed_db, count_queries, token_headers


@pytest.mark.django_db
def test_heartbeats_after_the_first_run_no_query(django_assert_num_queries):
    operator = make_operator(account=make_account(), status=Status.ONLINE)
    services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1")
    with django_assert_num_queries(0):
        for _ in range(100):
            services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1")


@pytest.mark.django_db
def test_closing_a_connection_runs_no_query(django_assert_num_queries):
    operator = make_operator(account=make_account(), status=Status.ONLINE)
    services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1")
    services.presence_heartbeat(operator=operator, conn_id="c2", device="t:2")
    with django_assert_num_queries(0):
        services.presence_disconnect(operator=operator, conn_id="c1")
        services.presence_disconnect(operator=operator, conn_id="c2")


@committed_db
async def test_a_burst_of_socket_heartbeats_never_reaches_the_database():
    key = await database_sync_to_async(_online_operator_token)()
    socket = Socket(token_headers(key))
    assert await socket.connect()
    hello = await socket.receive_until(lambda m: m["type"] == "hello")
    # Connecting made the operator present: the box is online, in the hello or
    # in a push after it (one no newer than the hello's is not sent). And the
    # socket has answered a first heartbeat: its connecting is over.
    box, acked = hello["chat_box"]["status"], False
    await socket.send({"type": "heartbeat"})
    while not (acked and box == "online"):
        frame = await socket.receive()
        acked = acked or frame["type"] == "heartbeat_ack"
        box = frame["status"] if frame["type"] == "chat_box" else box
    with count_queries() as queries:
        for _ in range(100):
            await socket.send({"type": "heartbeat"})
        acks = [await socket.receive() for _ in range(100)]
    assert {ack["type"] for ack in acks} == {"heartbeat_ack"}
    assert queries.sql == []

    # The counter does see the consumer's threads: a status change is counted.
    with count_queries() as queries:
        await socket.send({"type": "set_status", "status": "offline"})
        await socket.receive_until(lambda m: m["type"] == "operator_status")
    await socket.close()
    assert any("UPDATE" in sql for sql in queries.sql)


def _online_operator_token() -> str:
    operator = make_operator(account=make_account(), status=Status.ONLINE)
    return make_token(operator, device="phone")
