"""The operator WebSocket ``/ws/operator/``: thin, every decision is a service's."""

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.auth import parse_authorization, session_device_tag, token_device_tag, token_lookup
from accounts.models import Status
from presence import events, services
from presence.dispatch import DirectDispatchMixin
from presence.json_input import InvalidJson, json_parse
from presence.models import Source
from presence.selectors import operator_payload
from presence.store import ALL_DEVICES, StoreUnavailable

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_LOGGED_OUT = 4000
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


def same_origin(scope: dict) -> bool:
    """Cookie-authenticated sockets must come from our own pages (CSWSH guard).

    The rules of Django's CSRF origin check: the Origin names the host the
    request was sent to (``X-Forwarded-Host`` when ``USE_X_FORWARDED_HOST`` is
    on, behind a proxy that rewrites ``Host``), or is in CSRF_TRUSTED_ORIGINS.
    """
    raw_origin = _header(scope, b"origin")
    if not raw_origin:
        return False
    origin = raw_origin.decode("latin-1").strip().lower()
    if origin in {trusted.lower().rstrip("/") for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = _header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    host = host or _header(scope, b"host")
    if not host:
        return False
    # A chain of proxies lists several hosts; the first is the one the browser used.
    host_name = host.decode("latin-1").split(",")[0].strip().lower()
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host_name


class OperatorConsumer(DirectDispatchMixin, AsyncWebsocketConsumer):
    """Frames are answered one at a time, in the order they came: the answer
    to a heartbeat tells the client that everything it sent before has been
    handled. The heartbeat a frame carries is recorded when the frame arrives,
    though, not when its turn comes: a status change waiting for the store (a
    Redis outage, then its own retries) or for the process's one sync thread
    must not hold back the heartbeats sent after it. Those heartbeats keep the
    operator present; held back behind a status change stuck through a 20 s
    freeze of Redis, they reached the store too late and the sweep switched a
    heartbeating operator offline."""

    operator = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # What is left to answer, in order, and the task answering it (while there is something).
        self._steps: deque[Callable[[], Awaitable[None]]] = deque()
        self._answering: asyncio.Task | None = None
        self._failed = False
        # A heartbeat heard but not yet being recorded (done once recorded), and
        # the task recording heartbeats (while there are some): one touch in
        # flight at a time; the frames that arrive meanwhile share the next one.
        self._beat_due: asyncio.Future | None = None
        self._recording: asyncio.Task | None = None
        # The newest chat box version sent (the hello's, then each push's).
        self._box_version = -1

    async def connect(self) -> None:
        key = parse_authorization(_header(self.scope, b"authorization"))
        if key is not None:
            token = await database_sync_to_async(token_lookup)(key)
            if token is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            self.operator, self.device = token.operator, token_device_tag(token)
            self.source = Source.MOBILE if token.is_mobile else Source.API
        else:
            user = self.scope.get("user")
            session = self.scope.get("session")
            if user is None or not user.is_authenticated or session is None or not session.session_key:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            if not same_origin(self.scope):
                await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
                return
            self.operator, self.device = user, session_device_tag(session.session_key)
            self.source = Source.DASHBOARD
        if self.operator.account_id is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Loaded once: every heartbeat reads the account's grace period from it.
        await database_sync_to_async(lambda: self.operator.account)()
        self.groups = [events.account_group(self.operator.account_id), events.operator_group(self.operator.id)]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self._heartbeat()
        await self._send({"type": "hello", **await database_sync_to_async(self._hello)()})

    def _hello(self) -> dict:
        self.operator.refresh_from_db(fields=["status", "status_changed_at", "display_name", "role", "avatar"])
        chat_box = services.chat_box_read(account_id=self.operator.account_id)
        if chat_box is not None:
            self._box_version = chat_box["version"]
        return {"operator": operator_payload(self.operator), "chat_box": chat_box}

    async def disconnect(self, code: int) -> None:
        if self.operator is None or not hasattr(self, "groups"):
            return
        # Everything sent before the close is handled first, as it would be if
        # every frame waited for the one before it; then the connection ends.
        for task in (self._answering, self._recording):
            if task is not None:
                await task
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        try:
            await database_sync_to_async(services.presence_disconnect)(
                operator=self.operator, conn_id=self.channel_name
            )
        except StoreUnavailable:
            logger.warning("presence store unavailable on disconnect of operator %s", self.operator.id)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        raw = text_data if text_data is not None else bytes_data
        if raw is None or len(raw) > MAX_FRAME_BYTES:
            self._in_order(lambda: self.close(code=CLOSE_TOO_BIG))
            return
        try:
            message = json_parse(raw)
        except InvalidJson:
            self._in_order(lambda: self._error("invalid_json"))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "heartbeat":
            heard = self._hear()
            self._in_order(lambda: self._heartbeat_ack(heard))
        elif kind == "set_status":
            status = message.get("status")
            if status not in Status.values:
                self._in_order(lambda: self._error("invalid_status"))
                return
            heard = self._hear()
            self._in_order(lambda: self._set_status(status, heard))
        else:
            self._in_order(lambda: self.receive_other(kind, message))

    async def _heartbeat_ack(self, heard: asyncio.Future) -> None:
        await heard
        await self._send({"type": "heartbeat_ack"})

    async def _set_status(self, status: str, heard: asyncio.Future) -> None:
        # After its heartbeat is on record: an operator switching online is present.
        await heard
        try:
            await database_sync_to_async(services.operator_set_status)(
                operator=self.operator, status=status, source=self.source, device=self.device
            )
        except services.StatusChangeLimited as exc:
            # The socket stays open: the client may switch again once the window has passed.
            await self._send({"type": "error", "error": "rate_limited", "retry_after": exc.retry_after})

    async def receive_other(self, kind: object, message: object) -> None:
        """A frame this socket does not know; apps above extend the socket here."""
        await self._error("unknown_type")

    def _in_order(self, step: Callable[[], Awaitable[None]]) -> None:
        """Answer a frame after every frame that came before it."""
        self._steps.append(step)
        if self._answering is None or self._answering.done():
            self._answering = asyncio.create_task(self._answer_in_order())

    async def _answer_in_order(self) -> None:
        while self._steps:
            step = self._steps[0]
            try:
                if not self._failed:
                    await step()
            except Exception:
                # As when a consumer raises: the socket closes, and nothing the
                # client sent after it is handled.
                self._failed = True
                logger.exception("operator socket of operator %s failed", self.operator.id)
                await self.close(code=CLOSE_INTERNAL_ERROR)
            finally:
                self._steps.popleft()

    def _hear(self) -> asyncio.Future:
        """Record a heartbeat now, or as soon as the one being recorded is:
        the future is done once a touch that started after this call is."""
        if self._beat_due is None:
            self._beat_due = asyncio.get_running_loop().create_future()
            if self._recording is None or self._recording.done():
                self._recording = asyncio.create_task(self._record_heartbeats())
        return self._beat_due

    async def _record_heartbeats(self) -> None:
        while (recorded := self._beat_due) is not None:
            self._beat_due = None
            try:
                await self._heartbeat()
            except Exception as exc:
                recorded.set_exception(exc)
            else:
                recorded.set_result(None)

    async def _heartbeat(self) -> None:
        try:
            await services.apresence_heartbeat(operator=self.operator, conn_id=self.channel_name, device=self.device)
        except StoreUnavailable:
            # The socket stays up; the client keeps heartbeating and the store
            # hears from it again once it is back.
            logger.warning("presence store unavailable; heartbeat of operator %s dropped", self.operator.id)

    async def _send(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def _error(self, error: str) -> None:
        await self._send({"type": "error", "error": error})

    # -- channel-layer events -------------------------------------------------
    async def operator_status(self, event: dict) -> None:
        await self._send(
            {
                "type": "operator_status",
                "operator_id": event["operator_id"],
                "status": event["status"],
                "source": event["source"],
            }
        )

    async def operator_chat_box(self, event: dict) -> None:
        # Pushes of one account may come from several processes: one older
        # than what this socket has (or the same again: a resync) is not news.
        snapshot = event["snapshot"]
        if snapshot["version"] <= self._box_version:
            return
        self._box_version = snapshot["version"]
        await self._send({"type": "chat_box", **snapshot})

    async def operator_logout(self, event: dict) -> None:
        # One device, or every device but the one named in ``except`` (the
        # device that changed the password stays logged in).
        if event["device"] in (self.device, ALL_DEVICES) and event.get("except") != self.device:
            await self.close(code=CLOSE_LOGGED_OUT)
