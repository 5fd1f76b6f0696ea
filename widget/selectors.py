"""Reads for the public widget: resolved from the materialised snapshot."""

from dataclasses import dataclass

from django.utils import timezone

from presence import services
from presence.models import Account
from presence.selectors import (
    account_for_widget_key,
    chat_box_body,
    chat_box_snapshot,
    chat_box_state,
    snapshot_is_due,
    widget_box,
)


@dataclass(frozen=True)
class WidgetTarget:
    account_id: int
    group_key: str | None


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


def widget_status(*, widget_key: str, group_key: str | None) -> dict | None:
    """The public status answer, or None for an unknown key or group."""
    account_id = account_for_widget_key(widget_key=widget_key)
    if account_id is None:
        return None
    snapshot = widget_snapshot(account_id=account_id)
    if snapshot is None:
        return None
    return widget_box(snapshot, group_key)


def allowed_origins(*, account_id: int) -> list[str]:
    return Account.objects.filter(id=account_id).values_list("allowed_origins", flat=True).first() or []
