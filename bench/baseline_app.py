"""A minimal Channels application to compare the project with.

* ``/ws/bench/core/``: joins the group ``bench`` on the core ``channels_redis``
  layer and forwards what is sent to it (the fan-out baseline);
* ``/ws/bench/pubsub/``: the same on the pub/sub layer the project uses (the
  idle-connection and reconnect baselines: a bare consumer);
* ``/ws/bench/echo/``: answers ``heartbeat`` with ``heartbeat_ack`` and does
  nothing else (the heartbeat baseline).

Run with ``DJANGO_SETTINGS_MODULE=bench.baseline_settings``.
"""

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline_settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402 (Django must be set up first)
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


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/bench/core/", CoreGroupConsumer.as_asgi()),
                path("ws/bench/pubsub/", PubSubGroupConsumer.as_asgi()),
                path("ws/bench/echo/", EchoConsumer.as_asgi()),
            ]
        )
    }
)
