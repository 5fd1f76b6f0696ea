"""Reads: the facts the chat box rules need, the stored snapshots, and who is
connected. Selectors never write: ``presence.services.chatbox.chat_box_read``
is the read that recomputes a missing or past-due snapshot."""

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from accounts.models import Operator
from groups.models import Group, Membership
from hours.models import OpeningHours
from hours.schedule import Schedule
from presence.rules import ChatBoxState, OperatorFacts, chat_box_compute
from presence.snapshots import ChatBoxSnapshot
from presence.store import Connection, OperatorRef, StoreUnavailable, get_store


def accounts_schedules(*, account_ids: Collection[int]) -> dict[int, tuple[Schedule | None, dict[str, Schedule]]]:
    """``account_schedules`` of several accounts in one query (accounts without
    enabled opening hours are left out)."""
    schedules: dict[int, tuple[Schedule | None, dict[str, Schedule]]] = {}
    for hours in OpeningHours.objects.filter(account_id__in=account_ids, enabled=True).select_related("group"):
        account_schedule, group_schedules = schedules.setdefault(hours.account_id, (None, {}))
        if hours.group_id is None:
            schedules[hours.account_id] = (hours.to_schedule(), group_schedules)
        else:
            group_schedules[hours.group.key] = hours.to_schedule()
    return schedules


def presence_map(*, account_id: int) -> dict[int, float]:
    """operator id → present-until (POSIX seconds); an unreachable store means nobody is known present."""
    return presence_maps(account_ids=[account_id])[account_id]


def presence_maps(*, account_ids: Collection[int]) -> dict[int, dict[int, float]]:
    """``presence_map`` of several accounts in one round trip."""
    try:
        return get_store().present_until_maps(account_ids=account_ids)
    except StoreUnavailable:
        return {account_id: {} for account_id in account_ids}


def chat_box_states(*, account_ids: Collection[int], now: datetime) -> dict[int, ChatBoxState]:
    """``chat_box_state`` of several accounts with one query per table (a sweep
    recomputes thousands at once)."""
    group_keys: dict[int, list[str]] = defaultdict(list)
    for account_id, key in Group.objects.filter(account_id__in=account_ids).values_list("account_id", "key"):
        group_keys[account_id].append(key)
    # Keyed by account too: a membership counts only in the group's own account
    # (an operator moved to another account by site staff may keep old rows).
    memberships: dict[tuple[int, int], set[str]] = defaultdict(set)
    for account_id, operator_id, key in Membership.objects.filter(group__account_id__in=account_ids).values_list(
        "group__account_id", "operator_id", "group__key"
    ):
        memberships[account_id, operator_id].add(key)
    facts: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for account_id, op_id, status in Operator.objects.filter(account_id__in=account_ids, is_active=True).values_list(
        "account_id", "id", "status"
    ):
        facts[account_id].append((op_id, status))
    schedules = accounts_schedules(account_ids=account_ids)
    untils = presence_maps(account_ids=account_ids)
    moment = now.timestamp()
    states = {}
    for account_id in account_ids:
        until = untils.get(account_id, {})
        account_schedule, group_schedules = schedules.get(account_id, (None, {}))
        states[account_id] = chat_box_compute(
            operators=[
                OperatorFacts(
                    id=op_id,
                    status=status,
                    present=until.get(op_id, 0) > moment,
                    group_keys=frozenset(memberships.get((account_id, op_id), ())),
                )
                for op_id, status in facts[account_id]
            ],
            group_keys=group_keys[account_id],
            account_schedule=account_schedule,
            group_schedules=group_schedules,
            now=now,
        )
    return states


def chat_box_snapshot(*, account_id: int) -> ChatBoxSnapshot | None:
    """The materialised snapshot as stored (with ``version``), or None if missing/unreachable."""
    try:
        raw = get_store().snapshot_json(account_id=account_id)
    except StoreUnavailable:
        return None
    return json.loads(raw) if raw else None


def chat_box_snapshots(*, account_ids: Collection[int]) -> dict[int, ChatBoxSnapshot | None]:
    """``chat_box_snapshot`` of several accounts in one round trip."""
    try:
        raw = get_store().snapshot_jsons(account_ids=account_ids)
    except StoreUnavailable:
        return dict.fromkeys(account_ids)
    return {account_id: json.loads(text) if text else None for account_id, text in raw.items()}


def operator_connections(*, operator: Operator, now: datetime | None = None) -> list[Connection]:
    now = now or timezone.now()
    ref = OperatorRef(operator.account_id, operator.id)
    try:
        return get_store().connections(ref=ref, now=now.timestamp(), ttl=settings.PRESENCE_CONNECTION_TTL_SECONDS)
    except StoreUnavailable:
        return []


def operators_present(*, account_id: int, now: datetime | None = None) -> set[int]:
    moment = (now or timezone.now()).timestamp()
    return {op_id for op_id, until in presence_map(account_id=account_id).items() if until > moment}


def operator_payload(operator: Operator) -> dict:
    """An operator as the operator socket shows them (``hello``)."""
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
