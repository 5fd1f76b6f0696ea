"""The operator socket with conversations: ``/ws/operator/`` as ARCHITECTURE §4
describes it. The presence socket, plus the conversations the operator may
open (rule 6, checked here for each frame) and the typing indicator."""

import asyncio
import time

from channels.db import database_sync_to_async

from conversations import selectors, services
from presence.consumers import OperatorConsumer
from presence.rules import may_open

# Memberships are re-read at most this often (a change of groups reaches an
# open socket within this time).
GROUP_KEYS_TTL = 10.0
# An operator's typing is passed on at most once per this many seconds.
TYPING_EVERY = 2.0


class InboxConsumer(OperatorConsumer):
    _group_keys: frozenset[str] = frozenset()
    _is_admin = False
    _group_keys_at = float("-inf")
    _typing_at = float("-inf")
    _refreshing: asyncio.Task | None = None

    async def connect(self) -> None:
        await super().connect()
        if self.operator is not None and hasattr(self, "groups"):
            await self._refresh_access()

    async def receive_other(self, kind: object, message: object) -> None:
        if kind != "typing" or not isinstance(message, dict):
            await super().receive_other(kind, message)
            return
        conversation_id = message.get("conversation_id")
        if type(conversation_id) is not int:
            await self._error("invalid_conversation")
            return
        moment = time.monotonic()
        if moment - self._typing_at < TYPING_EVERY:
            return
        self._typing_at = moment
        await database_sync_to_async(services.operator_typing)(conversation_id=conversation_id, operator=self.operator)

    async def conversation_frame(self, event: dict) -> None:
        if self.operator is None:
            return
        if await self._may_open(group_key=event["group_key"], assigned=self.operator.id in event["assignee_ids"]):
            await self.send(text_data=event["text"])

    async def _may_open(self, *, group_key: str | None, assigned: bool) -> bool:
        # Re-read in the background: a frame never waits for the database
        # (nor holds back the heartbeats queued behind it).
        stale = time.monotonic() - self._group_keys_at > GROUP_KEYS_TTL
        if stale and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh_access())
        return may_open(
            is_admin=self._is_admin,
            group_keys=self._group_keys,
            group_key=group_key,
            assigned=assigned,
        )

    async def _refresh_access(self) -> None:
        self._group_keys, self._is_admin = await database_sync_to_async(self._access)()
        self._group_keys_at = time.monotonic()

    def _access(self) -> tuple[frozenset[str], bool]:
        self.operator.refresh_from_db(fields=["role"])
        return selectors.operator_group_keys(operator=self.operator), selectors.operator_is_admin(
            operator=self.operator
        )
