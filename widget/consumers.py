"""The public widget socket ``/ws/widget/{key}/``: status on connect and on every change."""

import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from chatstatus.metrics import WIDGET_CONNECTS_REFUSED
from presence import events
from presence.dispatch import DirectDispatchMixin
from presence.json_input import InvalidJson, json_parse
from presence.snapshots import ChatBoxSnapshot
from widget import selectors
from widget.hub import widget_hub
from widget.ratelimit import Limit, LocalLimiter
from widget.selectors import WidgetAccount, widget_status_body
from widget.visitors import visitor_token_digest, visitor_token_valid

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_RATE_LIMITED = 4429
# Widget sockets one client address may open per web process: 300 at once,
# then 300 a minute (5 a second). An office or a mobile carrier puts hundreds
# of visitors behind one address, and a restarted process takes all of a page's
# reconnects within seconds; a flood from one address is still held to 5 a
# second per process. Counted in this process's memory: no store round trip
# per connect, and the limit holds while the store is slow or down
# (widget/ratelimit.py; docs/OPERATIONS.md).
CONNECT_LIMIT = Limit(count=300, period=60)
connect_limiter = LocalLimiter(limit=CONNECT_LIMIT)
VISITOR_FRAME_MAX = 512

# Serialised once per process and version, not once per socket: a change
# reaches thousands of sockets of one account in the same process.
_TEXT_CACHE: dict[tuple[int, int, str | None, str], str] = {}
_TEXT_CACHE_MAX = 4096


def status_text(account: WidgetAccount, snapshot: ChatBoxSnapshot, group_key: str | None) -> str | None:
    cache_key = (account.account_id, snapshot["version"], group_key, account.tag)
    text = _TEXT_CACHE.get(cache_key)
    if text is None:
        body = widget_status_body(account=account, snapshot=snapshot, group_key=group_key)
        if body is None:
            return None
        text = json.dumps({"type": "status", **body})
        if len(_TEXT_CACHE) >= _TEXT_CACHE_MAX:
            _TEXT_CACHE.clear()
        _TEXT_CACHE[cache_key] = text
    return text


def _origin(scope: dict) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"origin":
            return value.decode("latin-1")
    return None


def _client_ip(scope: dict) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class WidgetConsumer(DirectDispatchMixin, AsyncWebsocketConsumer):
    # No layer channel of its own: the process's widget hub listens to the
    # account's group once and hands the pushes to every socket here.
    channel_layer_alias = None
    account: WidgetAccount | None = None
    group: str | None = None
    version = -1
    visitor: str | None = None  # digest of the visitor's token, once the socket names it
    _early: dict | None = None

    async def connect(self) -> None:
        if connect_limiter.hit(_client_ip(self.scope)) is not None:
            WIDGET_CONNECTS_REFUSED.inc()
            await self._refuse(CLOSE_RATE_LIMITED)
            return
        widget_key = self.scope["url_route"]["kwargs"]["widget_key"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.group_key = (query.get("group") or [None])[0] or None
        account = await selectors.awidget_account(widget_key=widget_key)
        if account is None:
            await self._refuse(CLOSE_NOT_FOUND)
            return
        if account.allowed_origins and _origin(self.scope) not in account.allowed_origins:
            await self._refuse(CLOSE_FORBIDDEN_ORIGIN)
            return
        # Subscribe before reading the snapshot: a change published in between
        # is then queued for this socket (and an older read is skipped by version).
        self.group = events.widget_group(account.account_id)
        hub = widget_hub()
        await hub.join(self.group, self)
        try:
            snapshot = await hub.snapshot(self.group, account_id=account.account_id)
        except BaseException:
            await self._leave()  # the hub must not keep the account's subscription for a socket that failed
            raise
        if snapshot is None or widget_status_body(account=account, snapshot=snapshot, group_key=self.group_key) is None:
            await self._leave()
            await self._refuse(CLOSE_NOT_FOUND)
            return
        await self.accept()
        self.account = account
        await self._push(snapshot)
        if self._early is not None:
            early, self._early = self._early, None
            await self._push(early)

    async def _refuse(self, code: int) -> None:
        # A browser sees a close code only on a socket that was accepted; a
        # refused handshake is an anonymous failure it would keep retrying.
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if self.group is not None:
            group, self.group = self.group, None
            await widget_hub().leave(group, self, digest=self.visitor)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """``{"type": "visitor", "token": T}``: from now on this socket also gets
        that visitor's conversation. Anything else is ignored (and bounded by
        the server's frame limit)."""
        if self.account is None or text_data is None or len(text_data) > VISITOR_FRAME_MAX:
            return
        try:
            frame = json_parse(text_data)
        except InvalidJson:
            return
        if not isinstance(frame, dict) or frame.get("type") != "visitor" or not visitor_token_valid(frame.get("token")):
            return
        digest = visitor_token_digest(frame["token"])
        hub = widget_hub()
        if digest != self.visitor and hub.identify(self.group, self, digest=digest, previous=self.visitor):
            self.visitor = digest
            await hub.mark_seen({digest})

    async def widget_visitor(self, event: dict) -> None:
        if self.account is not None:
            await self.send(text_data=event["text"])

    async def widget_snapshot(self, event: dict) -> None:
        if self.account is None:
            # Still connecting: the newest push so far is sent after the first status.
            if self._early is None or event["snapshot"]["version"] > self._early["version"]:
                self._early = event["snapshot"]
            return
        await self._push(event["snapshot"])

    async def _push(self, snapshot: ChatBoxSnapshot) -> None:
        if snapshot["version"] <= self.version:
            return
        text = status_text(self.account, snapshot, self.group_key)
        if text is None:  # the group was deleted
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.version = snapshot["version"]
        await self.send(text_data=text)
