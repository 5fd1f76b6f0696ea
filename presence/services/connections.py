"""Presence: connections heartbeat, close and log out; the sweep switches
offline the operators nobody has heard from for the grace period."""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Operator, Status
from presence import events
from presence.models import Source, StatusEvent
from presence.rules import presence_hold
from presence.services.chatbox import (
    chat_box_refresh,
    chat_box_refresh_on_commit,
    presence_resync,
    presence_resync_later,
)
from presence.services.status import operator_set_status, status_changes_publish_on_commit
from presence.store import ALL_DEVICES, OperatorRef, StoreUnavailable, get_store

logger = logging.getLogger(__name__)

SWEEP_BATCH = 5000


def _ttl() -> int:
    return settings.PRESENCE_CONNECTION_TTL_SECONDS


def presence_heartbeat(*, operator: Operator, conn_id: str, device: str, now: datetime | None = None) -> None:
    """A connection of ``operator`` is alive. Never touches the database unless
    the operator just became present (then the chat box may change)."""
    args = _touch_args(operator=operator, conn_id=conn_id, device=device, grace=_grace(operator), now=now)
    if get_store().touch(**args):
        chat_box_refresh(account_id=operator.account_id)


async def apresence_heartbeat(*, operator: Operator, conn_id: str, device: str, now: datetime | None = None) -> None:
    """``presence_heartbeat`` for a socket's event loop: the store is reached
    without a hop to the process's one sync thread (the socket loaded the
    operator's account when it connected)."""
    if Operator.account.is_cached(operator):
        grace = _grace(operator)
    else:
        grace = await database_sync_to_async(_grace)(operator)
    if await get_store().atouch(**_touch_args(operator=operator, conn_id=conn_id, device=device, grace=grace, now=now)):
        await database_sync_to_async(chat_box_refresh)(account_id=operator.account_id)


def _grace(operator: Operator) -> int:
    return operator.account.stale_after_seconds


def _touch_args(*, operator: Operator, conn_id: str, device: str, grace: int, now: datetime | None) -> dict:
    moment = (now or timezone.now()).timestamp()
    return {
        "ref": OperatorRef(operator.account_id, operator.id),
        "conn_id": conn_id,
        "device": device,
        "now": moment,
        "present_until": moment + presence_hold(ttl=_ttl(), grace=grace),
    }


def presence_disconnect(*, operator: Operator, conn_id: str, now: datetime | None = None) -> int:
    """A connection closed; the operator stays present for the grace period.
    Returns how many live connections remain."""
    moment = (now or timezone.now()).timestamp()
    grace = _grace(operator)
    return get_store().disconnect(
        ref=OperatorRef(operator.account_id, operator.id),
        conn_id=conn_id,
        now=moment,
        ttl=_ttl(),
        hold=presence_hold(ttl=_ttl(), grace=grace),
        grace=grace,
    )


def operator_logout(*, operator: Operator, device: str, now: datetime | None = None) -> bool:
    """An explicit logout of one device. The last device's logout marks the
    operator offline at once; with another device still live nothing changes.
    Returns True if the operator went offline."""
    now = now or timezone.now()
    ref = OperatorRef(operator.account_id, operator.id)
    try:
        live = get_store().logout(ref=ref, device=device, now=now.timestamp(), ttl=_ttl())
    except StoreUnavailable:
        # Without the store we cannot know about other devices; keep the status.
        logger.warning("presence store unavailable during logout of operator %s", operator.id)
        return False
    transaction.on_commit(
        lambda: events.publish(events.operator_group(operator.id), {"type": "operator.logout", "device": device})
    )
    if live:
        return False
    changed = operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.LOGOUT, now=now)
    if not changed:
        chat_box_refresh_on_commit(account_id=operator.account_id)
    return changed


def presence_sweep(*, now: datetime | None = None) -> int:
    """Mark offline every online operator whose presence expired (beat task).

    Safe to run concurrently: expired entries are claimed atomically in the
    store, the status update is conditional, and a short lock keeps two beats
    from doing the same work. Returns the number of operators switched offline.
    """
    now = now or timezone.now()
    store = get_store()
    with store.lock("sweep", timeout=max(settings.PRESENCE_SWEEP_SECONDS, 5), blocking=False) as acquired:
        if not acquired:
            return 0
        if store.ensure_epoch():
            presence_reseed(now=now)
        swept = 0
        while True:
            claimed = store.claim_expired(now=now.timestamp(), limit=SWEEP_BATCH)
            if not claimed:
                break
            try:
                swept += _sweep_claimed(claimed, now=now)
            except Exception:
                # Put them back (already expired, unless a heartbeat came
                # meanwhile) for the next run rather than wait for the lease.
                for ref in claimed:
                    store.seed(ref=ref, present_until=now.timestamp())
                raise
            # Done with them. Had this process died before, the claim's lease
            # would hand them to a later sweep.
            store.release_claimed(refs=claimed, claimed_at=now.timestamp())
            if len(claimed) < SWEEP_BATCH:
                break
        return swept


def _sweep_claimed(claimed: list[OperatorRef], *, now: datetime) -> int:
    # A heartbeat that slipped in after the claim made the operator present again.
    back = get_store().present_among(refs=claimed, now=now.timestamp())
    candidates = [ref.operator_id for ref in claimed if ref not in back]
    if not candidates:
        return 0
    switched = _switch_offline(candidates, now=now)
    changes: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for op_id, acc in switched:
        changes[acc].append((op_id, Status.OFFLINE, Source.STALE_SWEEP))
    status_changes_publish_on_commit(changes)
    return len(switched)


def _switch_offline(operator_ids: list[int], *, now: datetime) -> list[tuple[int, int]]:
    """Flip the operators still online to offline, each with its audit row, and
    return (operator id, account id) of those flipped. The UPDATE is
    conditional, so of two concurrent sweeps each operator is switched exactly
    once; flip and audit rows commit together (no change without its event).

    Delicate, performance-sensitive block: raw SQL. On PostgreSQL one statement
    per batch does both (UPDATE … RETURNING feeding INSERT … SELECT); elsewhere
    (the embedded SQLite) the rows go back through Python. The equivalent ORM,
    two round trips and a race window per batch where this has none::

        with transaction.atomic():
            rows = list(
                Operator.objects.select_for_update()
                .filter(id__in=chunk, status=Status.ONLINE)
                .values_list("id", "account_id")
            )
            Operator.objects.filter(id__in=[op for op, _ in rows]).update(status=Status.OFFLINE, status_changed_at=now)
            StatusEvent.objects.bulk_create(
                StatusEvent(account_id=acc, operator_id=op, old=Status.ONLINE, new=Status.OFFLINE,
                            source=Source.STALE_SWEEP, at=now)
                for op, acc in rows
            )
    """
    operators, events = Operator._meta.db_table, StatusEvent._meta.db_table
    switched: list[tuple[int, int]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(operator_ids), SWEEP_BATCH):
            chunk = operator_ids[start : start + SWEEP_BATCH]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"WITH switched AS ("  # noqa: S608 (no user input)
                    f" UPDATE {operators} SET status = %s, status_changed_at = %s"
                    f" WHERE status = %s AND id = ANY(%s::bigint[]) RETURNING id, account_id)"
                    f" INSERT INTO {events} (account_id, operator_id, old, new, source, device, at)"
                    f" SELECT account_id, id, %s, %s, %s, '', %s FROM switched"
                    f" RETURNING operator_id, account_id",
                    [Status.OFFLINE, now, Status.ONLINE, chunk, Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP, now],
                )
                switched += cursor.fetchall()
                continue
            for part in range(0, len(chunk), 500):  # SQLite's limit on parameters
                ids = chunk[part : part + 500]
                marks = ",".join(["%s"] * len(ids))
                cursor.execute(
                    f"UPDATE {operators} SET status = %s, status_changed_at = %s "  # noqa: S608 (no user input)
                    f"WHERE status = %s AND id IN ({marks}) RETURNING id, account_id",
                    [Status.OFFLINE, now, Status.ONLINE, *ids],
                )
                rows = cursor.fetchall()
                StatusEvent.objects.bulk_create(
                    StatusEvent(
                        account_id=acc,
                        operator_id=op_id,
                        old=Status.ONLINE,
                        new=Status.OFFLINE,
                        source=Source.STALE_SWEEP,
                        at=now,
                    )
                    for op_id, acc in rows
                )
                switched += rows
    return switched


def presence_reseed(*, now: datetime) -> None:
    """The store lost its data (Redis restarted empty): give every online
    operator one grace period to be heard from again instead of sweeping them
    offline at once or never."""
    rows = Operator.objects.filter(status=Status.ONLINE, account__isnull=False).values_list(
        "id", "account_id", "account__stale_after_seconds"
    )
    store = get_store()
    for operator_id, account_id, grace in rows.iterator():
        store.seed(ref=OperatorRef(account_id, operator_id), present_until=(now + timedelta(seconds=grace)).timestamp())
    presence_resync(now=now)
    presence_resync_later(now=now)


def operator_devices_end(*, operator: Operator, keep_device: str | None = None) -> None:
    """Log an operator out of every device at once (deactivated, deleted, a
    password set by site staff), or of every device but ``keep_device`` (the
    one that changed the password): their connections end now and every other
    socket of theirs closes after commit (the ``except`` of the logout event
    spares the kept device's sockets).

    With every device ended their presence ends now. With a device kept they
    are still logged in: the other devices' connections end as if closed (the
    grace period holds, as when a tab closes), so the page that changed the
    password, reloading meanwhile, does not lose them their status. All of it
    happens after commit."""
    ref = OperatorRef(operator.account_id, operator.id)

    def end() -> None:
        # After commit, like the push: a write that is rolled back (a bulk
        # delete refused at the owner) must leave everyone's presence as it was.
        now = timezone.now()
        try:
            if keep_device is None:
                get_store().logout(ref=ref, device=ALL_DEVICES, now=now.timestamp(), ttl=_ttl())
            elif operator.account_id is not None:
                for conn in get_store().connections(ref=ref, now=now.timestamp(), ttl=_ttl()):
                    if conn.device != keep_device:
                        presence_disconnect(operator=operator, conn_id=conn.conn_id, now=now)
        except StoreUnavailable:
            logger.warning("presence store unavailable; devices of operator %s not ended", operator.id)
        logout = {"type": "operator.logout", "device": ALL_DEVICES, "except": keep_device}
        events.publish(events.operator_group(ref.operator_id), logout)

    transaction.on_commit(end, robust=True)


def account_presence_forget(*, account_id: int) -> None:
    """After an account is deleted, forget what the store kept for it."""

    def drop() -> None:
        try:
            get_store().account_drop(account_id=account_id)
        except StoreUnavailable:
            # A later refresh of the missing account drops its snapshot; the sweep skips its operators.
            logger.warning("presence store unavailable; keys of deleted account %s left", account_id)

    transaction.on_commit(drop, robust=True)
