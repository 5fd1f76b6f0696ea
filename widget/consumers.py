"""The public widget socket ``/ws/widget/{key}/``: status on connect and on every change."""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from presence import events
from presence.selectors import account_for_widget_key, widget_box
from widget.selectors import allowed_origins, widget_snapshot

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN_ORIGIN = 4403

# Serialised once per process and version, not once per socket: a change
# reaches thousands of sockets of one account in the same process.
_TEXT_CACHE: dict[tuple[int, int, str | None], str] = {}
_TEXT_CACHE_MAX = 4096


def status_text(account_id: int, snapshot: dict, group_key: str | None) -> str | None:
    cache_key = (account_id, snapshot["version"], group_key)
    text = _TEXT_CACHE.get(cache_key)
    if text is None:
        box = widget_box(snapshot, group_key)
        if box is None:
            return None
        text = json.dumps({"type": "status", **box})
        if len(_TEXT_CACHE) >= _TEXT_CACHE_MAX:
            _TEXT_CACHE.clear()
        _TEXT_CACHE[cache_key] = text
    return text


def _origin(scope: dict) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"origin":
            return value.decode("latin-1")
    return None


class WidgetConsumer(AsyncWebsocketConsumer):
    account_id: int | None = None
    version = -1

    async def connect(self) -> None:
        widget_key = self.scope["url_route"]["kwargs"]["widget_key"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.group_key = (query.get("group") or [None])[0] or None
        account_id, snapshot, origins = await database_sync_to_async(self._resolve)(widget_key)
        if account_id is None or snapshot is None or widget_box(snapshot, self.group_key) is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if origins and _origin(self.scope) not in origins:
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        self.account_id = account_id
        await self.channel_layer.group_add(events.widget_group(account_id), self.channel_name)
        await self.accept()
        await self._push(snapshot)

    def _resolve(self, widget_key: str) -> tuple[int | None, dict | None, list[str]]:
        account_id = account_for_widget_key(widget_key=widget_key)
        if account_id is None:
            return None, None, []
        return account_id, widget_snapshot(account_id=account_id), allowed_origins(account_id=account_id)

    async def disconnect(self, code: int) -> None:
        if self.account_id is not None:
            await self.channel_layer.group_discard(events.widget_group(self.account_id), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Visitors only listen; anything they send is ignored (and bounded by the server's frame limit).
        return

    async def widget_snapshot(self, event: dict) -> None:
        await self._push(event["snapshot"])

    async def _push(self, snapshot: dict) -> None:
        if snapshot["version"] <= self.version:
            return
        text = status_text(self.account_id, snapshot, self.group_key)
        if text is None:  # the group was deleted
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.version = snapshot["version"]
        await self.send(text_data=text)
