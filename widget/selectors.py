"""Reads for the public widget: resolved from the materialised snapshot.

A warm status read touches no database: the snapshot lives in the presence
store and the little account data a widget needs (language, name, allowed
origins) is memoised per process for a short while.
"""

import asyncio
import hashlib
import threading
import time
import weakref
from dataclasses import dataclass

from cachetools import TTLCache
from channels.db import database_sync_to_async

from accounts.models import Account
from presence.services import achat_box_read, chat_box_read
from presence.snapshots import ChatBoxSnapshot, widget_box

# Longer keys than any we issue are refused before any lookup.
WIDGET_KEY_MAX = 64
# How long a process trusts what it read about an account. Status changes do
# not wait for this (they come from the snapshot); only a renamed account or a
# changed language or origin list does.
ACCOUNT_MEMO_SECONDS = 30
ACCOUNT_MEMO_MAX = 10_000
# Unknown keys are remembered apart, in a smaller cache: guessing keys costs
# the guesser a query per key at most every 30 s, and can only ever push out
# other unknown keys, never the accounts real widgets use.
UNKNOWN_MEMO_MAX = 1_000


@dataclass(frozen=True)
class WidgetAccount:
    account_id: int
    language: str
    name: str
    allowed_origins: tuple[str, ...]
    # Changes whenever language or name does, so ETags and cached texts follow.
    tag: str

    def writes_from(self, origin: str | None) -> bool:
        """A visitor's write over HTTP from a page at ``origin`` is taken: the
        account lists no origins, it is one of them, or there is no Origin
        (not a browser's cross-origin request). Sockets ask more: a browser
        always names its origin there (``widget.consumers``)."""
        return not self.allowed_origins or origin is None or origin in self.allowed_origins


@dataclass(frozen=True)
class WidgetStatus:
    body: dict
    etag: str
    account: WidgetAccount


_clock = time.monotonic
_known: TTLCache[str, WidgetAccount] = TTLCache(
    maxsize=ACCOUNT_MEMO_MAX, ttl=ACCOUNT_MEMO_SECONDS, timer=lambda: _clock()
)
_unknown: TTLCache[str, bool] = TTLCache(maxsize=UNKNOWN_MEMO_MAX, ttl=ACCOUNT_MEMO_SECONDS, timer=lambda: _clock())
_memo_lock = threading.Lock()
_MISS = object()


def widget_account(*, widget_key: str) -> WidgetAccount | None:
    """The account behind a public widget key (None: unknown), memoised per process."""
    if not widget_key or len(widget_key) > WIDGET_KEY_MAX:
        return None
    hit = _memo_hit(widget_key)
    if hit is not _MISS:
        return hit
    row = Account.objects.filter(widget_key=widget_key).values_list("id", "language", "name", "allowed_origins").first()
    with _memo_lock:
        if row is None:
            _unknown[widget_key] = True
            return None
        account_id, language, name, origins = row
        tag = hashlib.sha256(f"{language}\0{name}".encode()).hexdigest()[:8]
        account = _known[widget_key] = WidgetAccount(account_id, language, name, tuple(origins or ()), tag)
        return account


def _memo_hit(widget_key: str) -> WidgetAccount | None | object:
    """The memoised account (None for a memoised unknown key), else ``_MISS``."""
    with _memo_lock:
        account = _known.get(widget_key)
        if account is not None:
            return account
        return None if widget_key in _unknown else _MISS


# Look-ups in flight, per event loop and key: the connects of a storm that miss
# the memo together wait for one query instead of queueing thousands of them.
_looking_up: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def awidget_account(*, widget_key: str) -> WidgetAccount | None:
    """``widget_account`` from an event loop: a memoised answer costs no hop to
    the process's one sync thread (a reconnect storm is thousands at once), and
    concurrent misses of one key share one look-up."""
    if not widget_key or len(widget_key) > WIDGET_KEY_MAX:
        return None
    hit = _memo_hit(widget_key)
    if hit is not _MISS:
        return hit
    pending = _looking_up.setdefault(asyncio.get_running_loop(), {})
    lookup = pending.get(widget_key)
    if lookup is None:
        lookup = pending[widget_key] = asyncio.ensure_future(
            database_sync_to_async(widget_account)(widget_key=widget_key)
        )
        lookup.add_done_callback(lambda _done: pending.pop(widget_key, None))
    # Shielded: one connect given up must not cancel the others' look-up.
    return await asyncio.shield(lookup)


def widget_account_forget(*, widget_key: str | None = None) -> None:
    """Drop memoised account data (all of it without a key)."""
    with _memo_lock:
        if widget_key is None:
            _known.clear()
            _unknown.clear()
        else:
            _known.pop(widget_key, None)
            _unknown.pop(widget_key, None)


def widget_status_body(*, account: WidgetAccount, snapshot: ChatBoxSnapshot, group_key: str | None) -> dict | None:
    """The public answer for the account box or one group (None: unknown group).

    The contract fields come from the snapshot; ``language`` and
    ``account_name`` are extras the script uses for its texts."""
    box = widget_box(snapshot, group_key)
    if box is None:
        return None
    return {**box, "language": account.language, "account_name": account.name}


def widget_status(*, widget_key: str, group_key: str | None) -> WidgetStatus | None:
    """The public status answer with its ETag, or None for an unknown key or group."""
    account = widget_account(widget_key=widget_key)
    if account is None:
        return None
    return _widget_status(
        account, chat_box_read(account_id=account.account_id), widget_key=widget_key, group_key=group_key
    )


async def awidget_status(*, widget_key: str, group_key: str | None) -> WidgetStatus | None:
    """``widget_status`` from an event loop: with the key memoised and the
    snapshot current, one read on the store's asyncio client and no hop to a
    thread (the read every visitor's page makes, and a polling widget repeats)."""
    account = await awidget_account(widget_key=widget_key)
    if account is None:
        return None
    snapshot = await achat_box_read(account_id=account.account_id)
    return _widget_status(account, snapshot, widget_key=widget_key, group_key=group_key)


def _widget_status(
    account: WidgetAccount, snapshot: ChatBoxSnapshot | None, *, widget_key: str, group_key: str | None
) -> WidgetStatus | None:
    if snapshot is None:  # deleted since this process memoised its key
        widget_account_forget(widget_key=widget_key)
        return None
    body = widget_status_body(account=account, snapshot=snapshot, group_key=group_key)
    if body is None:
        return None
    # Group keys are slugs, safe inside a quoted ETag.
    etag = f'"{body["version"]}-{group_key or ""}-{account.tag}"'
    return WidgetStatus(body=body, etag=etag, account=account)
