"""One channel-layer listener per account per process for the widget sockets.

A Channels consumer gets a layer channel of its own; on the Redis pub/sub
layer that is a SUBSCRIBE on connect and an UNSUBSCRIBE on close, all through
one connection under one lock. A process holding thousands of widget sockets
paid that per socket, and a restart under them (every browser reconnecting at
once) queued so many that handshakes passed Daphne's 5 s limit, were dropped,
and came back: the process never recovered.

Widget sockets only listen to their account's group, so the process joins each
account group once, with one channel, and hands each message to that account's
sockets in this process. The subscription lives while the account has a socket
here.
"""

import asyncio
import dataclasses
import logging
import weakref
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)


class Listener(Protocol):
    async def widget_snapshot(self, event: dict) -> None: ...


@dataclasses.dataclass
class _Room:
    channel: str
    sockets: weakref.WeakSet  # a socket whose task died without leaving drops out by itself
    task: asyncio.Task


class WidgetHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self._rooms: dict[str, _Room] = {}
        self._lock = asyncio.Lock()

    async def join(self, group: str, listener: Listener) -> None:
        """Deliver ``group``'s messages to ``listener`` from now on (subscribed when this returns)."""
        async with self._lock:
            room = self._rooms.get(group)
            if room is None:
                channel = await self.layer.new_channel()
                await self.layer.group_add(group, channel)
                task = asyncio.create_task(self._listen(group, channel), name=f"widget hub {group}")
                room = self._rooms[group] = _Room(channel, weakref.WeakSet(), task)
            room.sockets.add(listener)

    async def leave(self, group: str, listener: Listener) -> None:
        async with self._lock:
            room = self._rooms.get(group)
            if room is None:
                return
            room.sockets.discard(listener)
            if not room.sockets:
                await self._close(group, room)

    def listeners(self, group: str) -> int:
        room = self._rooms.get(group)
        return len(room.sockets) if room else 0

    async def _close(self, group: str, room: _Room) -> None:
        del self._rooms[group]
        room.task.cancel()  # the layer unsubscribes a channel whose receive is cancelled
        await self.layer.group_discard(group, room.channel)

    async def _listen(self, group: str, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("widget hub: receive on %s failed; retrying", group)
                await asyncio.sleep(1)
                continue
            room = self._rooms.get(group)
            if room is None or room.channel != channel:
                return
            if message.get("type") != "widget.snapshot":
                continue
            for listener in list(room.sockets):
                try:
                    await listener.widget_snapshot(message)
                except Exception:
                    # One broken socket must not cost the others their push.
                    logger.exception("widget hub: delivery of %s to a socket failed", message.get("type"))


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def widget_hub() -> WidgetHub:
    """The hub of the running event loop (a process serves from one; tests run many)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = WidgetHub(get_channel_layer())
    return hub
