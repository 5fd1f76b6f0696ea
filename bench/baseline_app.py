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
  to the operators' group, operators to one visitor's group).

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


class RelayPost(AsyncHttpConsumer):
    """``POST /bench/relay`` ``{"to": GROUP, "frame": {...}}``: one ``group_send`` of the frame, 201."""

    channel_layer_alias = "default"

    async def handle(self, body: bytes) -> None:
        data = json.loads(body or b"{}")
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
