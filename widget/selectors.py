"""Reads for the public widget: resolved from the materialised snapshot.

A warm status read touches no database: the snapshot lives in the presence
store and the little account data a widget needs (language, name, allowed
origins) is memoised per process for a short while.
"""

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from groups.models import Membership
from presence import services
from presence.models import Account, Operator
from presence.selectors import (
    chat_box_body,
    chat_box_snapshot,
    chat_box_state,
    snapshot_is_due,
    widget_box,
)
from presence.store import StoreUnavailable, get_store
from widget.models import OfflineMessage

# Longer keys than any we issue are refused before any lookup.
WIDGET_KEY_MAX = 64
# How long a process trusts what it read about an account. Status changes do
# not wait for this (they come from the snapshot); only a renamed account or a
# changed language or origin list does.
ACCOUNT_MEMO_SECONDS = 30
ACCOUNT_MEMO_MAX = 10_000


@dataclass(frozen=True)
class WidgetAccount:
    account_id: int
    language: str
    name: str
    allowed_origins: tuple[str, ...]
    # Changes whenever language or name does, so ETags and cached texts follow.
    tag: str


@dataclass(frozen=True)
class WidgetStatus:
    body: dict
    etag: str
    account: WidgetAccount


_memo: dict[str, tuple[float, WidgetAccount | None]] = {}
_clock = time.monotonic
_memo_lock = threading.Lock()


def widget_account(*, widget_key: str) -> WidgetAccount | None:
    """The account behind a public widget key (None: unknown), memoised per
    process; unknown keys are memoised too so guessing costs no queries."""
    if not widget_key or len(widget_key) > WIDGET_KEY_MAX:
        return None
    hit = _memo_hit(widget_key)
    if hit:
        return hit[0]
    now = _clock()
    row = Account.objects.filter(widget_key=widget_key).values_list("id", "language", "name", "allowed_origins").first()
    account = None
    if row is not None:
        account_id, language, name, origins = row
        tag = hashlib.sha256(f"{language}\0{name}".encode()).hexdigest()[:8]
        account = WidgetAccount(account_id, language, name, tuple(origins or ()), tag)
    with _memo_lock:
        if len(_memo) >= ACCOUNT_MEMO_MAX:
            _memo.clear()
        _memo[widget_key] = (now + ACCOUNT_MEMO_SECONDS, account)
    return account


def _memo_hit(widget_key: str) -> tuple[WidgetAccount | None] | None:
    """``(account,)`` while memoised (the account None for an unknown key), else None."""
    hit = _memo.get(widget_key)
    return (hit[1],) if hit is not None and hit[0] > _clock() else None


async def awidget_account(*, widget_key: str) -> WidgetAccount | None:
    """``widget_account`` from an event loop: a memoised answer costs no hop to
    the process's one sync thread (a reconnect storm is thousands at once)."""
    hit = _memo_hit(widget_key)
    return hit[0] if hit else await database_sync_to_async(widget_account)(widget_key=widget_key)


def widget_account_forget(*, widget_key: str | None = None) -> None:
    """Drop memoised account data (all of it without a key)."""
    with _memo_lock:
        if widget_key is None:
            _memo.clear()
        else:
            _memo.pop(widget_key, None)


def widget_snapshot(*, account_id: int) -> dict | None:
    """The account's snapshot, recomputed first when missing or past a schedule
    flip (reads are level-triggered: right even if a beat run was missed)."""
    snapshot = chat_box_snapshot(account_id=account_id)
    if snapshot is None or snapshot_is_due(snapshot, now=timezone.now()):
        services.chat_box_refresh(account_id=account_id)
        snapshot = chat_box_snapshot(account_id=account_id)
        if snapshot is None:
            # Store unreachable: compute without materialising rather than fail.
            snapshot = {**chat_box_body(chat_box_state(account_id=account_id, now=timezone.now())), "version": 0}
    return snapshot


async def awidget_snapshot(*, account_id: int) -> dict | None:
    """``widget_snapshot`` from an event loop: read from the store directly,
    with a hop to a thread only when it must be recomputed."""
    try:
        raw = await get_store().asnapshot_json(account_id=account_id)
    except StoreUnavailable:
        raw = None
    snapshot = json.loads(raw) if raw else None
    if snapshot is None or snapshot_is_due(snapshot, now=timezone.now()):
        return await database_sync_to_async(widget_snapshot)(account_id=account_id)
    return snapshot


def widget_status_body(*, account: WidgetAccount, snapshot: dict, group_key: str | None) -> dict | None:
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
    snapshot = widget_snapshot(account_id=account.account_id)
    body = widget_status_body(account=account, snapshot=snapshot, group_key=group_key)
    if body is None:
        return None
    # Group keys are slugs, safe inside a quoted ETag.
    etag = f'"{body["version"]}-{group_key or ""}-{account.tag}"'
    return WidgetStatus(body=body, etag=etag, account=account)


def offline_message_list(*, operator: Operator) -> QuerySet[OfflineMessage]:
    """The operator's account's offline messages, newest first, those for the
    operator's own groups ahead of the rest (annotated ``for_my_groups``).

    Staff without an account see none: messages belong to a website."""
    mine = Membership.objects.filter(group_id=OuterRef("group_id"), operator_id=operator.id)
    return (
        OfflineMessage.objects.filter(account_id=operator.account_id)
        .annotate(for_my_groups=Exists(mine))
        .select_related("group")
        .order_by("-for_my_groups", "-created_at", "-id")
    )
