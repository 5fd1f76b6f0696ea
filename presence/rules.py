"""The presence and chat box rules of ARCHITECTURE §3, as pure functions.

Nothing else in the project decides whether a chat box is online: the selector
``presence.selectors.chat_box_states`` gathers the facts and calls
``chat_box_compute``; every reader (widget, dashboard, API) shows its result.
How long a heartbeat keeps an operator present is ``presence_hold``: the
presence services and both stores use it, nothing recomputes it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from hours.schedule import Schedule, is_open, next_change

ONLINE = "online"
OFFLINE = "offline"
REASON_ONLINE = "operators_online"
REASON_NO_OPERATOR = "no_operator_online"
REASON_CLOSED = "closed"


def presence_hold(*, ttl: float, grace: float) -> float:
    """Seconds a heartbeat keeps an operator present.

    ``present(op)``: a live connection, or one that ended less than the grace
    period ago. A connection is live for ``ttl`` after its last heartbeat; one
    that dies silently (a crash, a lost network) is noticed only then, and its
    grace period counts from its last heartbeat, so a heartbeat holds the
    operator present for the longer of the two. A connection closed cleanly
    holds them for ``grace`` from the close.
    """
    return max(ttl, grace)


@dataclass(frozen=True)
class OperatorFacts:
    id: int
    status: str
    present: bool
    group_keys: frozenset[str] = frozenset()

    @property
    def available(self) -> bool:
        return self.status == ONLINE and self.present


@dataclass(frozen=True)
class BoxState:
    status: str
    reason: str
    next_change_at: datetime | None


@dataclass(frozen=True)
class ChatBoxState:
    status: str
    reason: str
    next_change_at: datetime | None
    groups: dict[str, BoxState] = field(default_factory=dict)

    @property
    def account_box(self) -> BoxState:
        return BoxState(self.status, self.reason, self.next_change_at)

    def box(self, group_key: str | None) -> BoxState:
        return self.account_box if group_key is None else self.groups[group_key]


def may_answer(*, group_keys: frozenset[str], group_key: str | None) -> bool:
    """Rules 2 and 6: may an operator in groups ``group_keys`` (empty: in no
    group) answer for the box, or the conversation, of group ``group_key``
    (None: the account-level one)? Operators in no group answer everything;
    members answer their groups. With no groups in use nobody is in one, so
    everybody answers everything (rule 1)."""
    return not group_keys or (group_key is not None and group_key in group_keys)


def may_open(*, is_admin: bool, group_keys: frozenset[str], group_key: str | None, assigned: bool) -> bool:
    """Rule 6: admins open every conversation of their account; agents those
    they may answer or are assigned."""
    return is_admin or assigned or may_answer(group_keys=group_keys, group_key=group_key)


def _box(*, staffed: bool, schedule: Schedule | None, now: datetime) -> BoxState:
    # Rule 3: outside opening hours the box is closed whatever operators do.
    if schedule is not None:
        flip = next_change(schedule=schedule, after=now)
        if not is_open(schedule=schedule, at=now):
            return BoxState(OFFLINE, REASON_CLOSED, flip)
    else:
        flip = None
    if staffed:
        return BoxState(ONLINE, REASON_ONLINE, flip)
    return BoxState(OFFLINE, REASON_NO_OPERATOR, flip)


def chat_box_compute(
    *,
    operators: Iterable[OperatorFacts],
    group_keys: Iterable[str],
    account_schedule: Schedule | None,
    group_schedules: Mapping[str, Schedule],
    now: datetime,
) -> ChatBoxState:
    """Rules 1–4. ``account_schedule`` is None when opening hours are off."""
    available = [op for op in operators if op.available]
    keys = sorted(group_keys)
    # Rules 1–2: a box is staffed when an available operator may answer for it.
    account = _box(
        staffed=any(may_answer(group_keys=op.group_keys, group_key=None) for op in available),
        schedule=account_schedule,
        now=now,
    )
    groups = {}
    for key in keys:
        staffed = any(may_answer(group_keys=op.group_keys, group_key=key) for op in available)
        groups[key] = _box(staffed=staffed, schedule=group_schedules.get(key, account_schedule), now=now)
    return ChatBoxState(account.status, account.reason, account.next_change_at, groups)
