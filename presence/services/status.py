"""An operator's chosen status: switch it, record it, tell everyone after commit."""

import logging
import math
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Operator, Status
from presence import events
from presence.models import Source, StatusEvent
from presence.services.chatbox import chat_box_refresh_many
from presence.store import OperatorRef, StoreUnavailable, get_store

logger = logging.getLogger(__name__)

# At most 10 status changes of one operator in 10 s. A person switching by hand,
# or an app retrying, never comes near it; a script looping over the socket or
# the API is cut off after ten. Each change is a database write and an audit
# row, two pushes to every colleague's dashboard and one to every widget of
# the account: a thousand frames on one socket were 16 s of work and 3,000
# pushes. Fixed windows aligned to the epoch, as the widget's limits: a burst
# straddling a boundary gets 20, still cheap, for one store round trip a request.
STATUS_CHANGE_LIMIT = 10
STATUS_CHANGE_PERIOD = 10  # seconds


class StatusChangeLimited(Exception):
    """Too many status changes of one operator: nothing was changed or recorded;
    the next may be asked in ``retry_after`` seconds."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(f"too many status changes; retry after {retry_after} s")
        self.retry_after = retry_after


def operator_set_status(
    *, operator: Operator, status: str, source: str, device: str = "", now: datetime | None = None
) -> bool:
    """Switch an operator's chosen status; True if it changed.

    The update is conditional on the status it replaces, so of two concurrent
    writers exactly one records the change. A change a client asks for may be
    refused with ``StatusChangeLimited`` (see ``_limit_applies``).
    """
    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}")
    now = now or timezone.now()
    if _limit_applies(source=source, status=status):
        _status_change_count(operator=operator, now=now)
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
    status_changes_publish_on_commit({operator.account_id: [(operator.id, status, source)]})
    return True


def _limit_applies(*, source: str, status: str) -> bool:
    """Whether a change counts against the operator's limit.

    Counted: what a client asks for, against the operator whose status changes
    — their own switches (dashboard, API, app) and an admin forcing them online,
    because a change costs the same whoever asks for it (and an admin's flood
    is then bounded too). Never counted: what the system does (the sweep, a
    logout) and an admin switching someone offline (a deactivation, "switch
    offline" in the dashboard, the admin or the API): repeating "offline"
    changes nothing, so it cannot flood, and taking a flapping colleague off the
    box must work even while that colleague's budget is spent.
    """
    if source in (Source.LOGOUT, Source.STALE_SWEEP):
        return False
    return not (source == Source.ADMIN and status == Status.OFFLINE)


def _status_change_count(*, operator: Operator, now: datetime) -> None:
    """Count one request against the operator's window; raise when over.

    Every request counts, one that will turn out to change nothing too:
    knowing that takes the database, and a refusal must cost one store round
    trip and no query. An unreachable store lets the change through: losing the
    flood guard for a moment is better than refusing every switch.
    """
    moment = now.timestamp()
    window = int(moment // STATUS_CHANGE_PERIOD)
    key = f"a:{operator.account_id}:status-changes:{operator.id}:{window}"
    try:
        count = get_store().count(key, now=moment, ttl=STATUS_CHANGE_PERIOD + 1)
    except StoreUnavailable:
        logger.warning("presence store unavailable; status change of operator %s not counted", operator.id)
        return
    if count > STATUS_CHANGE_LIMIT:
        raise StatusChangeLimited(retry_after=max(1, math.ceil((window + 1) * STATUS_CHANGE_PERIOD - moment)))


def _presence_expect(*, operator: Operator, now: datetime) -> None:
    """An operator switched online with no presence on record (an admin forcing
    an absent colleague) gets an already-expired entry, so the next sweep
    switches them back offline unless a device is heard from first. An operator
    with a live or recent connection keeps the entry they have."""
    try:
        get_store().seed(ref=OperatorRef(operator.account_id, operator.id), present_until=now.timestamp())
    except StoreUnavailable:
        logger.warning("presence store unavailable; operator %s not queued for the sweep", operator.id)


def status_changes_publish_on_commit(changes: dict[int, list[tuple[int, str, str]]]) -> None:
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
