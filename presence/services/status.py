"""An operator's chosen status: switch it, record it, tell everyone after commit."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Operator, Status
from presence import events
from presence.models import StatusEvent
from presence.services.chatbox import chat_box_refresh_many
from presence.store import OperatorRef, StoreUnavailable, get_store

logger = logging.getLogger(__name__)


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
    status_changes_publish_on_commit({operator.account_id: [(operator.id, status, source)]})
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
