"""A minimal Channels application to compare the project with.

* ``/ws/bench/core/``: joins the group ``bench`` on the core ``channels_redis``
  layer and forwards what is sent to it (the fan-out baseline);
* ``/ws/bench/pubsub/``: the same on the pub/sub layer the project uses (the
  idle-connection and reconnect baselines: a bare consumer);
* ``/ws/bench/echo/``: answers ``heartbeat`` with ``heartbeat_ack`` and does
  nothing else (the heartbeat baseline);
* ``/ws/bench/relay/?group=NAME`` and ``POST /bench/relay`` ``{"to": NAME, "frame": {...}}``:
  a bare chat relay on the pub/sub layer the project uses — a posted frame goes
  to the sockets of group ``NAME`` (the conversations baseline: visitors post
  to the operators' group, operators to one visitor's group). With
  ``BENCH_RELAY_WRITES`` (a PostgreSQL conninfo) each post first stores its
  message as the project does, in one transaction of three statements on the
  event loop (psycopg's asyncio pool, no thread, no ORM): the row of its
  conversation locked, the message inserted, the conversation updated (the
  conversations benchmark's floor: the relay with the writes).

Run with ``DJANGO_SETTINGS_MODULE=bench.baseline_settings``.
"""

import json
import os
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline_settings")
django.setup()

from channels.generic.http import AsyncHttpConsumer  # noqa: E402 (Django must be set up first)
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

GROUP = "bench"
HELLO_STATUS = json.dumps({"type": "status", "status": "online", "reason": "operators_online", "version": 0})
ACK = json.dumps({"type": "heartbeat_ack"})


class CoreGroupConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = "core"
    groups = [GROUP]  # joined before connect(), left after disconnect, by Channels

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=HELLO_STATUS)

    async def bench_push(self, event: dict) -> None:
        await self.send(text_data=event["text"])


class PubSubGroupConsumer(CoreGroupConsumer):
    channel_layer_alias = "default"


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=json.dumps({"type": "hello"}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or bytes_data or "{}")
        if message.get("type") == "heartbeat":
            await self.send(text_data=ACK)


class RelayConsumer(AsyncWebsocketConsumer):
    """Joins the group named in ``?group=`` on the pub/sub layer, forwards what
    is sent to it and answers heartbeats."""

    channel_layer_alias = "default"

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.relay_group = (query.get("group") or [GROUP])[0]
        await self.channel_layer.group_add(self.relay_group, self.channel_name)
        await self.accept()
        await self.send(text_data=HELLO_STATUS)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.relay_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if '"heartbeat"' in (text_data or ""):
            await self.send(text_data=ACK)

    async def bench_push(self, event: dict) -> None:
        await self.send(text_data=event["text"])


_writes_pool = None


async def _relay_pool():
    """The floor's connection pool, made on the first post, in the server's loop.
    Opened on every call: ``open()`` takes the pool's lock and does nothing once
    open, so posts that arrive while the first one opens it wait for it."""
    global _writes_pool
    if _writes_pool is None:
        from psycopg_pool import AsyncConnectionPool

        _writes_pool = AsyncConnectionPool(os.environ["BENCH_RELAY_WRITES"], min_size=4, max_size=20, open=False)
    await _writes_pool.open()
    return _writes_pool


async def _relay_store(frame: dict) -> None:
    """The three statements of a message (``conversations.services``' shape): lock, insert, update."""
    message = frame["message"]
    pool = await _relay_pool()
    async with pool.connection() as conn, conn.transaction():
        row = await (
            await conn.execute(
                "SELECT last_seq FROM bench_relay_conversation WHERE id = %s FOR UPDATE", [message["conversation_id"]]
            )
        ).fetchone()
        seq = row[0] + 1
        created = await (
            await conn.execute(
                "INSERT INTO bench_relay_message (conversation_id, seq, author, body, client_id) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id, created_at",
                [message["conversation_id"], seq, message["author"], message["body"], message["client_id"]],
            )
        ).fetchone()
        await conn.execute(
            "UPDATE bench_relay_conversation SET last_seq = %s, last_message_at = %s, waiting_since = "
            "CASE WHEN %s = 'visitor' THEN coalesce(waiting_since, %s) END WHERE id = %s",
            [seq, created[1], message["author"], created[1], message["conversation_id"]],
        )
    message.update(id=created[0], seq=seq, created_at=created[1].isoformat())


class RelayPost(AsyncHttpConsumer):
    """``POST /bench/relay`` ``{"to": GROUP, "frame": {...}}``: one ``group_send`` of the frame, 201
    (with ``BENCH_RELAY_WRITES``: the message stored first)."""

    channel_layer_alias = "default"

    async def handle(self, body: bytes) -> None:
        data = json.loads(body or b"{}")
        if os.environ.get("BENCH_RELAY_WRITES"):
            await _relay_store(data["frame"])
        await self.channel_layer.group_send(data["to"], {"type": "bench.push", "text": json.dumps(data["frame"])})
        await self.send_response(201, b'{"ok":true}', headers=[(b"Content-Type", b"application/json")])


application = ProtocolTypeRouter(
    {
        "http": URLRouter([path("bench/relay", RelayPost.as_asgi())]),
        "websocket": URLRouter(
            [
                path("ws/bench/core/", CoreGroupConsumer.as_asgi()),
                path("ws/bench/pubsub/", PubSubGroupConsumer.as_asgi()),
                path("ws/bench/echo/", EchoConsumer.as_asgi()),
                path("ws/bench/relay/", RelayConsumer.as_asgi()),
            ]
        ),
    }
)
