"""Writes to operators' status and presence; the only place that publishes."""

import logging
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from presence import events
from presence.models import Account, ChatBoxEvent, Operator, Source, Status, StatusEvent
from presence.selectors import (
    chat_box_body,
    chat_box_due_at,
    chat_box_snapshots,
    chat_box_states,
)
from presence.store import ALL_DEVICES, OperatorRef, SnapshotWrite, StoreUnavailable, dumps, get_store

logger = logging.getLogger(__name__)

SWEEP_BATCH = 5000
# Accounts recomputed together: one query per table and one store round trip each.
REFRESH_BATCH = 500


def _ttl() -> int:
    return settings.PRESENCE_CONNECTION_TTL_SECONDS


def operator_payload(operator: Operator) -> dict:
    return {
        "id": operator.id,
        "email": operator.email,
        "display_name": operator.display_name,
        "role": operator.role,
        "status": operator.status,
        "status_changed_at": operator.status_changed_at.isoformat().replace("+00:00", "Z"),
        "avatar_url": operator.avatar.url if operator.avatar else None,
        "initials": operator.initials,
    }


# --- chat box snapshot --------------------------------------------------------


def chat_box_refresh(*, account_id: int, now: datetime | None = None, republish: bool = False) -> int | None:
    """Recompute an account's snapshot; store and publish it only if it changed
    (``republish``: publish the stored one even so, for subscribers who may
    have missed pushes).

    Returns the new version, or None when nothing changed. A per-account lock
    serialises recomputes so an older computation never overwrites a newer one.
    """
    store = get_store()
    try:
        with store.lock(f"refresh:{account_id}", timeout=10) as acquired:
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
            with store.locks([f"refresh:{account_id}" for account_id in chunk], timeout=30) as held:
                mine = [account_id for account_id in chunk if f"refresh:{account_id}" in held]
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
    widget_keys = dict(Account.objects.filter(id__in=account_ids).values_list("id", "widget_key"))
    for account_id in account_ids:
        if account_id not in widget_keys:
            # A deleted account: forget its snapshot so boundary runs stop finding it due.
            store.snapshot_drop(account_id=account_id)
    live = [account_id for account_id in account_ids if account_id in widget_keys]
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
                widget_key=widget_keys[account_id],
                body=dumps(bodies[account_id]),
                due_at=due_at.timestamp() if due_at else None,
            )
        )
    versions = dict(zip(live, store.snapshot_store_many(writes=writes, now=now.timestamp()), strict=True))
    snapshots = {}
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
    *, account_id: int, previous: dict | None, body: dict, version: int, now: datetime
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


def _publish_snapshots(snapshots: dict[int, dict]) -> None:
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
    """Recompute every account whose schedule flips a box by now (beat task)."""
    now = now or timezone.now()
    due = get_store().due_accounts(now=now.timestamp(), limit=10_000)
    chat_box_refresh_many(account_ids=due, now=now)
    return len(due)


# --- operator status ------------------------------------------------------------


def operator_set_status(
    *, operator: Operator, status: str, source: str, device: str = "", now: datetime | None = None
) -> bool:
    """Switch an operator's chosen status; True if it changed.

    The update is conditional on the status it replaces, so of two concurrent
    writers exactly one records the change.
    """
    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}")
    now = now or timezone.now()
    with transaction.atomic():
        old = Operator.objects.filter(id=operator.id).values_list("status", flat=True).first()
        if old is None or old == status:
            operator.status = old or operator.status
            return False
        changed = Operator.objects.filter(id=operator.id, status=old).update(status=status, status_changed_at=now)
        if not changed:
            return False
        StatusEvent.objects.create(
            account_id=operator.account_id,
            operator_id=operator.id,
            old=old,
            new=status,
            source=source,
            device=device[:80],
            at=now,
        )
    operator.status, operator.status_changed_at = status, now
    if status == Status.ONLINE:
        _presence_expect(operator=operator, now=now)
    _after_status_change(account_id=operator.account_id, changes=[(operator.id, status, source)])
    return True


def _presence_expect(*, operator: Operator, now: datetime) -> None:
    """An operator switched online with no presence on record (an admin forcing
    an absent colleague) gets an already-expired entry, so the next sweep
    switches them back offline unless a device is heard from first. An operator
    with a live or recent connection keeps the entry they have."""
    try:
        get_store().seed(ref=OperatorRef(operator.account_id, operator.id), present_until=now.timestamp())
    except StoreUnavailable:
        logger.warning("presence store unavailable; operator %s not queued for the sweep", operator.id)


def _after_status_change(*, account_id: int, changes: list[tuple[int, str, str]]) -> None:
    _after_status_changes({account_id: changes})


def _after_status_changes(changes: dict[int, list[tuple[int, str, str]]]) -> None:
    """After commit: push each status change (account id → (operator id,
    status, source)) to its account's sockets, then recompute those accounts'
    chat boxes."""

    def publish() -> None:
        events.publish_many(
            [
                (
                    events.account_group(account_id),
                    {"type": "operator.status", "operator_id": operator_id, "status": status, "source": source},
                )
                for account_id, account_changes in changes.items()
                for operator_id, status, source in account_changes
            ]
        )
        chat_box_refresh_many(account_ids=list(changes))

    # Robust: a failing recompute must not fail the writer, whose change is
    # committed (chat_box_refresh_many isolates one account's failure).
    transaction.on_commit(publish, robust=True)


# --- presence ----------------------------------------------------------------------


def presence_heartbeat(
    *, operator: Operator, conn_id: str, device: str, grace: int, now: datetime | None = None
) -> None:
    """A connection of ``operator`` is alive. Never touches the database unless
    the operator just became present (then the chat box may change)."""
    if get_store().touch(**_touch_args(operator=operator, conn_id=conn_id, device=device, grace=grace, now=now)):
        chat_box_refresh(account_id=operator.account_id)


async def apresence_heartbeat(
    *, operator: Operator, conn_id: str, device: str, grace: int, now: datetime | None = None
) -> None:
    """``presence_heartbeat`` for a socket's event loop: the store is reached
    without a hop to the process's one sync thread."""
    if await get_store().atouch(**_touch_args(operator=operator, conn_id=conn_id, device=device, grace=grace, now=now)):
        await database_sync_to_async(chat_box_refresh)(account_id=operator.account_id)


def _touch_args(*, operator: Operator, conn_id: str, device: str, grace: int, now: datetime | None) -> dict:
    moment = (now or timezone.now()).timestamp()
    return {
        "ref": OperatorRef(operator.account_id, operator.id),
        "conn_id": conn_id,
        "device": device,
        "now": moment,
        "present_until": moment + max(_ttl(), grace),
    }


def presence_disconnect(*, operator: Operator, conn_id: str, grace: int, now: datetime | None = None) -> int:
    """A connection closed; the operator stays present for the grace period.
    Returns how many live connections remain."""
    moment = (now or timezone.now()).timestamp()
    return get_store().disconnect(
        ref=OperatorRef(operator.account_id, operator.id), conn_id=conn_id, now=moment, ttl=_ttl(), grace=grace
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
    _after_status_changes(changes)
    return len(switched)


def _switch_offline(operator_ids: list[int], *, now: datetime) -> list[tuple[int, int]]:
    """Flip the operators still online to offline, each with its audit row, and
    return (operator id, account id) of those flipped. The UPDATE is
    conditional, so of two concurrent sweeps each operator is switched exactly
    once; flip and audit rows commit together (no change without its event).

    On PostgreSQL one statement per batch does both (UPDATE … RETURNING feeding
    INSERT … SELECT); elsewhere (the embedded SQLite) the rows go back through
    Python."""
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


# --- accounts and operators -------------------------------------------------------


@transaction.atomic
def account_create(*, name: str, email: str, password: str | None, display_name: str = "") -> tuple[Account, Operator]:
    """A new account with its owner operator."""
    account = Account(name=name)
    account.full_clean()
    account.save()
    owner = operator_create(
        account=account, email=email, display_name=display_name or name, password=password, role=Operator.Role.OWNER
    )
    chat_box_refresh_on_commit(account_id=account.id)
    return account, owner


def account_update(*, account: Account, **fields: object) -> Account:
    allowed = {"name", "timezone", "stale_after_seconds", "allowed_origins", "language"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown account fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    account.save()
    chat_box_refresh_on_commit(account_id=account.id)
    return account


def operator_create(
    *,
    account: Account,
    email: str,
    display_name: str,
    password: str | None = None,
    role: str = Operator.Role.AGENT,
) -> Operator:
    """A new operator, offline: creating or logging in never switches anyone online."""
    email = Operator.objects.normalize_email(email).lower()
    operator = Operator(account=account, email=email, display_name=display_name, role=role)
    operator.set_unusable_password()
    operator.full_clean(exclude=["password"])
    if password:
        try:
            validate_password(password, operator)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        operator.set_password(password)
    _save_unique(operator, field="email")
    return operator


def operator_update(*, operator: Operator, **fields: object) -> Operator:
    allowed = {"display_name", "role", "email", "language", "avatar", "is_active"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown operator fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(operator, name, value)
    if "email" in fields:
        operator.email = Operator.objects.normalize_email(operator.email).lower()
    operator.full_clean(exclude=["password"])
    with transaction.atomic():
        _save_unique(operator, field="email")
        if fields.get("is_active") is False:
            # A deactivated operator is logged out of every device at once.
            _presence_end_all(operator=operator)
            operator_set_status(operator=operator, status=Status.OFFLINE, source=Source.ADMIN)
    if "is_active" in fields:
        chat_box_refresh_on_commit(account_id=operator.account_id)
    return operator


def _save_unique(instance: models.Model, *, field: str) -> None:
    """Save; a unique clash lost to a concurrent writer becomes the same field
    error that validation gives when there is no race."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        raise ValidationError({field: _("This value is already in use.")}) from None


def _presence_end_all(*, operator: Operator) -> None:
    ref = OperatorRef(operator.account_id, operator.id)
    try:
        get_store().logout(ref=ref, device=ALL_DEVICES, now=timezone.now().timestamp(), ttl=_ttl())
    except StoreUnavailable:
        logger.warning("presence store unavailable; devices of operator %s not ended", operator.id)
    transaction.on_commit(
        lambda: events.publish(
            events.operator_group(ref.operator_id), {"type": "operator.logout", "device": ALL_DEVICES}
        )
    )


@transaction.atomic
def operator_delete(*, operator: Operator) -> None:
    account_id = operator.account_id
    _presence_end_all(operator=operator)
    operator.delete()
    chat_box_refresh_on_commit(account_id=account_id)
