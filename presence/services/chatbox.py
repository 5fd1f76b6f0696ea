"""The chat box engine: recompute, store and publish each account's snapshot.

The rules themselves are ``presence.rules.chat_box_compute``; this module
decides *when* they run (after every change of their inputs, at schedule
boundaries, when a reader finds the snapshot missing or past due) and makes
sure a result is stored once, versioned, recorded when a box flips and
published once, after commit.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import Account, Operator, Status
from presence import events
from presence.models import ChatBoxEvent, StatusEvent
from presence.selectors import chat_box_snapshot, chat_box_snapshots, chat_box_states
from presence.snapshots import ChatBoxBody, ChatBoxSnapshot, chat_box_body, chat_box_due_at, snapshot_is_due
from presence.store import SnapshotWrite, StoreUnavailable, dumps, get_store

logger = logging.getLogger(__name__)

# Accounts recomputed together: one query per table and one store round trip each.
REFRESH_BATCH = 500
# After the store lost its data (a Redis restart, a failover) the truth is
# published again this long after, besides at once: a web process's
# channel-layer subscription reconnects on its own (channels_redis retries every
# second), and what is published before it has resubscribed reaches none of
# its sockets. The second time is for a process that was slower.
RESYNC_AFTER_SECONDS = (2, 8)


# The store lock that serialises an account's recomputes.
REFRESH_LOCK_PREFIX = "refresh:"


def refresh_lock(account_id: int) -> str:
    return f"{REFRESH_LOCK_PREFIX}{account_id}"


def chat_box_read(*, account_id: int) -> ChatBoxSnapshot | None:
    """The account's chat box as every reader shows it (widget, sockets, API,
    dashboard): the stored snapshot, recomputed first when it is missing or
    past a schedule flip. Reads are level-triggered: right even when a
    boundary run or a push was missed. None: the account does not exist (any
    more: a process may still know its widget key for a while)."""
    snapshot = chat_box_snapshot(account_id=account_id)
    if snapshot is not None and not snapshot_is_due(snapshot, now=timezone.now()):
        return snapshot
    chat_box_refresh(account_id=account_id)
    snapshot = chat_box_snapshot(account_id=account_id)
    if snapshot is None:
        if not Account.objects.filter(id=account_id).exists():
            return None
        # Store unreachable: compute without materialising rather than fail.
        state = chat_box_states(account_ids=[account_id], now=timezone.now())[account_id]
        snapshot = {**chat_box_body(state), "version": 0}
    return snapshot


# The last snapshot parsed per account, as the store held it: a read that finds
# the same text (most of them, between two changes) reuses it. Callers only read
# a snapshot; none changes one.
_PARSED: dict[int, tuple[str, ChatBoxSnapshot]] = {}
_PARSED_MAX = 4096


def _parsed(account_id: int, raw: str) -> ChatBoxSnapshot:
    kept = _PARSED.get(account_id)
    if kept is not None and kept[0] == raw:
        return kept[1]
    snapshot: ChatBoxSnapshot = json.loads(raw)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[account_id] = (raw, snapshot)
    return snapshot


async def achat_box_read(*, account_id: int) -> ChatBoxSnapshot | None:
    """``chat_box_read`` from an event loop: a current snapshot costs one store
    read and no hop to the process's one sync thread."""
    try:
        raw = await get_store().asnapshot_json(account_id=account_id)
    except StoreUnavailable:
        raw = None
    if raw:
        snapshot = _parsed(account_id, raw)
        if not snapshot_is_due(snapshot, now=timezone.now()):
            return snapshot
    return await database_sync_to_async(chat_box_read)(account_id=account_id)


def chat_box_refresh(*, account_id: int, now: datetime | None = None, republish: bool = False) -> int | None:
    """Recompute an account's snapshot; store and publish it only if it changed
    (``republish``: publish the stored one even so, for subscribers who may
    have missed pushes).

    Returns the new version, or None when nothing changed. A per-account lock
    serialises recomputes so an older computation never overwrites a newer one.
    """
    store = get_store()
    try:
        with store.lock(refresh_lock(account_id), timeout=10) as acquired:
            if not acquired:
                logger.warning("refresh lock for account %s not acquired; recomputing anyway", account_id)
            versions = _chat_box_refresh_locked([account_id], now=now or timezone.now(), republish=republish)
            return versions.get(account_id)
    except StoreUnavailable:
        logger.warning("presence store unavailable; chat box of account %s not refreshed", account_id)
        return None


def chat_box_refresh_many(*, account_ids: Collection[int], now: datetime | None = None, republish: bool = False) -> int:
    """``chat_box_refresh`` for many accounts (a sweep's, a schedule boundary's),
    in batches: one query per table, one store round trip per step and one
    publish per batch. An account whose lock is held elsewhere, or a batch that
    fails, is refreshed on its own, so one bad account holds back no other.

    Returns how many snapshots changed."""
    now = now or timezone.now()
    ids = sorted(set(account_ids))
    store = get_store()
    changed = 0
    for start in range(0, len(ids), REFRESH_BATCH):
        chunk = ids[start : start + REFRESH_BATCH]
        done: set[int] = set()
        try:
            with store.locks([refresh_lock(account_id) for account_id in chunk], timeout=30) as held:
                mine = [account_id for account_id in chunk if refresh_lock(account_id) in held]
                versions = _chat_box_refresh_locked(mine, now=now, republish=republish)
                done = set(mine)
                changed += sum(1 for version in versions.values() if version)
        except StoreUnavailable:
            logger.warning("presence store unavailable; %s chat boxes not refreshed", len(chunk))
            continue
        except Exception:
            logger.exception("batch refresh of %s chat boxes failed; refreshing them one by one", len(chunk))
        for account_id in chunk:
            if account_id not in done:
                try:
                    changed += chat_box_refresh(account_id=account_id, now=now, republish=republish) is not None
                except Exception:
                    # It stays due (or stale) and is retried by the next run.
                    logger.exception("chat box refresh of account %s failed", account_id)
    return changed


def _chat_box_refresh_locked(account_ids: list[int], *, now: datetime, republish: bool) -> dict[int, int | None]:
    """Recompute, store and publish the snapshots of accounts whose refresh
    locks the caller holds. Returns account id → new version (None: unchanged)."""
    if not account_ids:
        return {}
    store = get_store()
    existing = set(Account.objects.filter(id__in=account_ids).values_list("id", flat=True))
    for account_id in account_ids:
        if account_id not in existing:
            # A deleted account: forget its snapshot so boundary runs stop finding it due.
            store.account_drop(account_id=account_id)
    live = [account_id for account_id in account_ids if account_id in existing]
    if not live:
        return {}
    states = chat_box_states(account_ids=live, now=now)
    bodies = {account_id: chat_box_body(states[account_id]) for account_id in live}
    previous = chat_box_snapshots(account_ids=live)
    writes = []
    for account_id in live:
        due_at = chat_box_due_at(states[account_id])
        writes.append(
            SnapshotWrite(
                account_id=account_id,
                body=dumps(bodies[account_id]),
                due_at=due_at.timestamp() if due_at else None,
            )
        )
    versions = dict(zip(live, store.snapshot_store_many(writes=writes, now=now.timestamp()), strict=True))
    snapshots: dict[int, ChatBoxSnapshot] = {}
    flips = []
    for account_id, version in versions.items():
        if version is not None:
            snapshots[account_id] = {**bodies[account_id], "version": version}
            flips += _chat_box_flips(
                account_id=account_id, previous=previous[account_id], body=bodies[account_id], version=version, now=now
            )
        elif republish and previous[account_id] is not None:
            # Unchanged (and, under the lock, still what was read): push it again.
            snapshots[account_id] = previous[account_id]
    if snapshots:
        # Published after commit: a subscriber who reacts must find the facts stored.
        transaction.on_commit(lambda: _publish_snapshots(snapshots), robust=True)
    if flips:
        ChatBoxEvent.objects.bulk_create(flips)
    return versions


def _chat_box_flips(
    *, account_id: int, previous: ChatBoxSnapshot | None, body: ChatBoxBody, version: int, now: datetime
) -> list[ChatBoxEvent]:
    boxes = {"": body, **body["groups"]}
    old_boxes = {} if previous is None else {"": previous, **previous["groups"]}
    return [
        ChatBoxEvent(
            account_id=account_id,
            group_key=key,
            old=old_boxes[key]["status"] if key in old_boxes else Status.OFFLINE,
            new=box["status"],
            reason=box["reason"],
            version=version,
            at=now,
        )
        for key, box in boxes.items()
        if (old_boxes[key]["status"] if key in old_boxes else Status.OFFLINE) != box["status"]
    ]


def _publish_snapshots(snapshots: dict[int, ChatBoxSnapshot]) -> None:
    messages: list[tuple[str, dict]] = []
    for account_id, snapshot in snapshots.items():
        messages.append((events.widget_group(account_id), {"type": "widget.snapshot", "snapshot": snapshot}))
        messages.append((events.account_group(account_id), {"type": "operator.chat_box", "snapshot": snapshot}))
    events.publish_many(messages)


def chat_box_refresh_on_commit(*, account_id: int) -> None:
    # Robust: the write is committed whatever happens here; a failing recompute
    # is logged and must not fail the writer nor the other accounts' work.
    transaction.on_commit(lambda: chat_box_refresh(account_id=account_id), robust=True)


def chat_box_refresh_due(*, now: datetime | None = None) -> int:
    """Recompute every account whose schedule flips a box by now, and publish
    every account's truth again when a resync is due (beat task)."""
    now = now or timezone.now()
    store = get_store()
    due = store.due_accounts(now=now.timestamp(), limit=10_000)
    chat_box_refresh_many(account_ids=due, now=now)
    if store.resync_claim(now=now.timestamp()):
        presence_resync(now=now)
    return len(due)


def presence_resync_later(*, now: datetime) -> None:
    """Have the truth published again ``RESYNC_AFTER_SECONDS`` from now, by
    the boundary runs. The moments are kept in the store, not in delayed
    Celery tasks: a worker holding a delayed task when Redis goes away dies
    restoring it (kombu), and the store's moments survive a worker restart."""
    get_store().resync_schedule(due_at=[(now + timedelta(seconds=delay)).timestamp() for delay in RESYNC_AFTER_SECONDS])


def presence_after_failover(*, now: datetime) -> None:
    """Redis Sentinel replaced the master (``chatstatus.failover``): drop the
    chat boxes' refresh locks, raise every snapshot's version above any the
    old master may have given out, then have the truth published again
    (``presence_resync_later``).

    A refresh holding its account's lock when the master died left the lock
    on the replica (replicated) and lost its release with the master: until
    the lock's timeout (10–30 s) every refresh of that account would wait for
    it, up to 10 s each, and a status change's refresh runs in the request
    that made it. A refresh really running across the switch may overlap
    another once its lock is gone; the two resyncs publish the truth after
    both.

    A snapshot written on the old master and pushed, but not replicated,
    left widgets holding a version the new master would give again to other
    content: they keep the highest version seen and would ignore it (and the
    resyncs) until the version passed theirs. ``snapshots_rebase`` puts every
    version above the failover's moment, so the resyncs reach them."""
    store = get_store()
    try:
        dropped = store.locks_forget(prefix=REFRESH_LOCK_PREFIX)
        store.snapshots_rebase(now=now.timestamp())
    except StoreUnavailable:
        logger.warning("presence store unavailable; refresh locks and versions not reset after the failover")
    else:
        if dropped:
            logger.warning("dropped %d chat box refresh lock(s) held across the failover", dropped)
    presence_resync_later(now=now)


def presence_resync(*, now: datetime) -> None:
    """Publish the truth once more to every account after the store (Redis)
    lost its data: pushes published while it was down were lost with it (the
    channel layer is pub/sub: nothing queues), so open sockets may show a state
    that is no longer true and nothing would otherwise correct them.

    Every account's snapshot is rebuilt (its schedule deadline went with the
    data too) and published even if unchanged; every operator whose status was
    ever changed has it published again, with the cause of that last change.
    """
    last_source = StatusEvent.objects.filter(operator_id=OuterRef("id")).order_by("-at", "-id").values("source")[:1]
    statuses: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    rows = (
        Operator.objects.filter(account__isnull=False, is_active=True)
        .annotate(last_source=Subquery(last_source))
        .filter(last_source__isnull=False)
        .values_list("account_id", "id", "status", "last_source")
    )
    for account_id, operator_id, status, source in rows.iterator():
        statuses[account_id].append((operator_id, status, source))
    events.publish_many(
        [
            (
                events.account_group(account_id),
                {"type": "operator.status", "operator_id": operator_id, "status": status, "source": source},
            )
            for account_id, account_statuses in sorted(statuses.items())
            for operator_id, status, source in account_statuses
        ]
    )
    chat_box_refresh_many(account_ids=list(Account.objects.values_list("id", flat=True)), now=now, republish=True)
