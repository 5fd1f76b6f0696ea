"""Every rule of ARCHITECTURE §3 as a table of cases over the pure function."""

from datetime import UTC, datetime

import pytest

from hours.schedule import parse_schedule
from presence.rules import OperatorFacts, chat_box_compute

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, 11:00 in Prague
OPEN_NOW = parse_schedule(
    timezone="Europe/Prague", weekly={"tuesday": [{"from": "09:00", "to": "17:00"}]}, exceptions=[]
)
CLOSED_NOW = parse_schedule(
    timezone="Europe/Prague", weekly={"tuesday": [{"from": "13:00", "to": "17:00"}]}, exceptions=[]
)


def op(op_id, status="online", present=True, groups=()):
    return OperatorFacts(id=op_id, status=status, present=present, group_keys=frozenset(groups))


def compute(operators, groups=(), account_schedule=None, group_schedules=None):
    return chat_box_compute(
        operators=operators,
        group_keys=groups,
        account_schedule=account_schedule,
        group_schedules=group_schedules or {},
        now=NOW,
    )


NO_GROUPS = [
    ("nobody at all", [], "offline", "no_operator_online"),
    ("one online and present", [op(1)], "online", "operators_online"),
    ("online but not present", [op(1, present=False)], "offline", "no_operator_online"),
    ("present but offline", [op(1, status="offline")], "offline", "no_operator_online"),
    ("one of several available", [op(1, status="offline"), op(2, present=False), op(3)], "online", "operators_online"),
]


@pytest.mark.parametrize(("case", "operators", "status", "reason"), NO_GROUPS, ids=[c[0] for c in NO_GROUPS])
def test_without_groups_the_box_is_online_iff_any_operator_is_available(case, operators, status, reason):
    state = compute(operators)
    assert (state.status, state.reason) == (status, reason)
    assert state.groups == {}
    assert state.next_change_at is None


GROUPS = ("sales", "support")
WITH_GROUPS = [
    # case, operators, account box, sales, support
    ("nobody available", [op(1, present=False, groups=["sales"])], "offline", "offline", "offline"),
    ("an ungrouped operator staffs every box", [op(1)], "online", "online", "online"),
    ("a grouped operator staffs only their group", [op(1, groups=["sales"])], "offline", "online", "offline"),
    ("an operator in two groups counts for both", [op(1, groups=["sales", "support"])], "offline", "online", "online"),
    (
        "only grouped operators available: account box offline, their groups online",
        [op(1, groups=["sales"]), op(2, groups=["support"]), op(3, status="offline")],
        "offline",
        "online",
        "online",
    ),
    (
        "an absent ungrouped operator does not count",
        [op(1, present=False), op(2, groups=["support"])],
        "offline",
        "offline",
        "online",
    ),
]


@pytest.mark.parametrize(
    ("case", "operators", "account", "sales", "support"), WITH_GROUPS, ids=[c[0] for c in WITH_GROUPS]
)
def test_with_groups_operators_count_for_their_groups(case, operators, account, sales, support):
    state = compute(operators, groups=GROUPS)
    assert state.status == account
    assert {key: box.status for key, box in state.groups.items()} == {"sales": sales, "support": support}
    for box in (state.account_box, *state.groups.values()):
        assert box.reason == ("operators_online" if box.status == "online" else "no_operator_online")


def test_outside_opening_hours_the_box_is_closed_whatever_operators_do():
    state = compute([op(1)], account_schedule=CLOSED_NOW)
    assert (state.status, state.reason) == ("offline", "closed")
    assert state.next_change_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_inside_opening_hours_the_operator_rules_apply_and_the_closing_time_is_known():
    state = compute([op(1)], account_schedule=OPEN_NOW)
    assert (state.status, state.reason) == ("online", "operators_online")
    assert state.next_change_at == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    nobody = compute([], account_schedule=OPEN_NOW)
    assert (nobody.status, nobody.reason) == ("offline", "no_operator_online")
    assert nobody.next_change_at == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


SCHEDULES = [
    # case, account schedule, group schedules, expected (account, sales, support) reasons
    ("account closed, groups follow it", CLOSED_NOW, {}, ("closed", "closed", "closed")),
    ("account closed, a group's own open schedule replaces it", CLOSED_NOW, {"sales": OPEN_NOW},
     ("closed", "operators_online", "closed")),
    ("account open, a group's own closed schedule replaces it", OPEN_NOW, {"support": CLOSED_NOW},
     ("operators_online", "operators_online", "closed")),
    ("no account schedule, one group closed", None, {"support": CLOSED_NOW},
     ("operators_online", "operators_online", "closed")),
]  # fmt: skip


@pytest.mark.parametrize(("case", "account", "groups", "reasons"), SCHEDULES, ids=[c[0] for c in SCHEDULES])
def test_a_group_schedule_overrides_the_account_schedule(case, account, groups, reasons):
    state = compute([op(1)], groups=GROUPS, account_schedule=account, group_schedules=groups)
    assert (state.reason, state.groups["sales"].reason, state.groups["support"].reason) == reasons
    for box in (state.account_box, *state.groups.values()):
        assert box.status == ("online" if box.reason == "operators_online" else "offline")


def test_a_group_without_any_schedule_has_no_next_change():
    state = compute([op(1, groups=["sales"])], groups=GROUPS, group_schedules={"support": OPEN_NOW})
    assert state.groups["sales"].next_change_at is None
    assert state.groups["support"].next_change_at == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
