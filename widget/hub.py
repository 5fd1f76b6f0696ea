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

The same subscription carries what a conversation sends to one visitor
(``widget.visitor``: a frame and the digest of the visitor's token): the hub
hands it to that visitor's sockets in this process, found by the digest.

It also keeps the account's newest snapshot, the one every pushed
``widget.snapshot`` carries, so a socket that connects while others of its
account are here gets its first status without a store read: a restart puts
thousands of one account's sockets through connect at once, and one read
(shared by every connect waiting for it) serves them all. A snapshot kept
longer than ``SNAPSHOT_FRESH_SECONDS`` without a push, or one whose
``next_change_at`` has passed, is read again (a push lost while the layer
reconnected costs at most that long).
"""

import asyncio
import dataclasses
import logging
import time
import weakref
from typing import Protocol

from channels.layers import BaseChannelLayer, get_channel_layer
from django.utils import timezone

from presence import services as presence_services
from presence.snapshots import ChatBoxSnapshot, snapshot_is_due
from presence.store import StoreUnavailable, get_store

logger = logging.getLogger(__name__)

# Visitors with a widget socket here are marked live in the store this often,
# for this long (a reply is e-mailed only to a visitor with no live widget).
VISITORS_SEEN_EVERY = 30.0
VISITORS_SEEN_TTL = 75.0
# A kept snapshot with no push for this long is read again before it is handed out.
SNAPSHOT_FRESH_SECONDS = 10.0


class Listener(Protocol):
    async def widget_snapshot(self, event: dict) -> None: ...

    async def widget_visitor(self, event: dict) -> None: ...


@dataclasses.dataclass
class _Room:
    channel: str
    sockets: weakref.WeakSet  # a socket whose task died without leaving drops out by itself
    task: asyncio.Task
    # token digest → the sockets of that visitor here
    visitors: dict[str, weakref.WeakSet] = dataclasses.field(default_factory=dict)
    snapshot: ChatBoxSnapshot | None = None
    snapshot_at = float("-inf")  # monotonic: when it was pushed, or when the read that got it began
    reading: asyncio.Future | None = None

    def keep(self, snapshot: ChatBoxSnapshot | None, *, at: float) -> None:
        if snapshot is None:
            return
        if self.snapshot is None or snapshot["version"] >= self.snapshot["version"]:
            self.snapshot, self.snapshot_at = snapshot, max(at, self.snapshot_at)


class WidgetHub:
    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self._rooms: dict[str, _Room] = {}
        self._lock = asyncio.Lock()
        self._seen_task: asyncio.Task | None = None

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

    async def snapshot(self, group: str, *, account_id: int) -> ChatBoxSnapshot | None:
        """The account's current snapshot for a socket that has joined ``group``:
        the one kept here while it is fresh, else one store read shared by every
        connect asking meanwhile."""
        room = self._rooms.get(group)
        if room is None:
            return await presence_services.achat_box_read(account_id=account_id)
        kept = room.snapshot
        if (
            kept is not None
            and time.monotonic() - room.snapshot_at < SNAPSHOT_FRESH_SECONDS
            and not snapshot_is_due(kept, now=timezone.now())
        ):
            return kept
        if room.reading is None or room.reading.done():
            room.reading = asyncio.ensure_future(self._read(room, account_id=account_id))
        # Shielded: one connect given up (its client left) must not cancel the others' read.
        return await asyncio.shield(room.reading)

    @staticmethod
    async def _read(room: _Room, *, account_id: int) -> ChatBoxSnapshot | None:
        began = time.monotonic()
        snapshot = await presence_services.achat_box_read(account_id=account_id)
        room.keep(snapshot, at=began)
        # A push newer than the read may have arrived meanwhile.
        return room.snapshot if snapshot is not None else None

    def identify(self, group: str, listener: Listener, *, digest: str, previous: str | None = None) -> bool:
        """From now on also hand ``listener`` the messages for the visitor whose
        token has ``digest``; False if the listener has not joined ``group``."""
        room = self._rooms.get(group)
        if room is None or listener not in room.sockets:
            return False
        if previous is not None:
            self._forget(room, listener, previous)
        room.visitors.setdefault(digest, weakref.WeakSet()).add(listener)
        if self._seen_task is None or self._seen_task.done():
            self._seen_task = asyncio.create_task(self._mark_seen_forever(), name="widget hub visitors seen")
        return True

    def visitor_digests(self) -> set[str]:
        return {digest for room in self._rooms.values() for digest, sockets in room.visitors.items() if sockets}

    async def mark_seen(self, digests: set[str]) -> None:
        if not digests:
            return
        try:
            await get_store().avisitors_seen(digests=digests, now=time.time(), ttl=VISITORS_SEEN_TTL)
        except StoreUnavailable:
            logger.warning("widget hub: store unavailable; %d visitors not marked live", len(digests))

    async def _mark_seen_forever(self) -> None:
        while True:
            await asyncio.sleep(VISITORS_SEEN_EVERY)
            digests = self.visitor_digests()
            if not digests:
                return
            await self.mark_seen(digests)

    @staticmethod
    def _forget(room: _Room, listener: Listener, digest: str) -> None:
        sockets = room.visitors.get(digest)
        if sockets is not None:
            sockets.discard(listener)
            if not sockets:
                del room.visitors[digest]

    async def leave(self, group: str, listener: Listener, *, digest: str | None = None) -> None:
        async with self._lock:
            room = self._rooms.get(group)
            if room is None:
                return
            room.sockets.discard(listener)
            if digest is not None:
                self._forget(room, listener, digest)
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
            kind = message.get("type")
            if kind == "widget.snapshot":
                room.keep(message.get("snapshot"), at=time.monotonic())
                listeners, handler = list(room.sockets), "widget_snapshot"
            elif kind == "widget.visitor":
                listeners, handler = list(room.visitors.get(message.get("visitor"), ())), "widget_visitor"
            else:
                continue
            for listener in listeners:
                try:
                    await getattr(listener, handler)(message)
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
