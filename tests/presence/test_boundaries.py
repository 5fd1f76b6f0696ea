"""Opening-hours boundaries: the periodic ``chat_box_refresh_due`` flips a chat
box exactly when its schedule does, and leaves everything else alone."""

import datetime

import pytest
import time_machine

from accounts.models import Operator, Status
from hours.services import opening_hours_set
from presence import services
from presence.models import ChatBoxEvent
from presence.selectors import chat_box_snapshot
from presence.store import get_store
from tests.factories import make_account, make_group, make_operator
from tests.presence.conftest import break_recompute_of, committed_db, of_type

pytestmark = committed_db

UTC = datetime.UTC
MONDAY = datetime.datetime(2027, 3, 1, tzinfo=UTC)  # a Monday, in the future so the store's expiries hold
NINE_TO_FIVE = {"monday": [{"from": "09:00", "to": "17:00"}]}


def at(day: datetime.datetime, hhmmss: str) -> datetime.datetime:
    hour, minute, second = (float(part) for part in hhmmss.split(":"))
    return day + datetime.timedelta(hours=hour, minutes=minute, seconds=second)


@pytest.fixture
def clock():
    with time_machine.travel(at(MONDAY, "08:00:00"), tick=False) as traveller:
        yield traveller


def heartbeat(operator: Operator) -> None:
    services.presence_heartbeat(operator=operator, conn_id=f"c{operator.id}", device="t:1")


def box(account_id: int, group_key: str | None = None) -> tuple[str, str, str | None]:
    snapshot = chat_box_snapshot(account_id=account_id)
    target = snapshot if group_key is None else snapshot["groups"][group_key]
    return target["status"], target["reason"], target["next_change_at"]


@pytest.fixture
def shop(clock):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    opening_hours_set(account=account, enabled=True, timezone="UTC", weekly=NINE_TO_FIVE, exceptions=[])
    return account, operator


def test_the_box_opens_at_the_boundary_and_not_before(shop, clock, published):
    account, operator = shop
    assert box(account.id) == ("offline", "closed", "2027-03-01T09:00:00Z")

    clock.move_to(at(MONDAY, "08:59:30"))
    heartbeat(operator)  # present, but the shop is closed: nothing visible changes
    clock.move_to(at(MONDAY, "08:59:59.999"))
    assert services.chat_box_refresh_due() == 0
    assert published == []

    clock.move_to(at(MONDAY, "09:00:00"))
    assert services.chat_box_refresh_due() == 1
    assert box(account.id) == ("online", "operators_online", "2027-03-01T17:00:00Z")
    assert len(of_type(published, "widget.snapshot")) == 1
    assert list(ChatBoxEvent.objects.filter(account=account).values_list("old", "new", "reason")) == [
        ("offline", "online", "operators_online")
    ]
    # The deadline moved on to 17:00: a second run finds nothing due.
    assert services.chat_box_refresh_due() == 0
    assert len(of_type(published, "widget.snapshot")) == 1


def test_a_late_run_still_catches_the_boundary(shop, clock):
    account, operator = shop
    clock.move_to(at(MONDAY, "09:00:04"))
    heartbeat(operator)
    clock.move_to(at(MONDAY, "09:00:07"))
    services.chat_box_refresh_due()
    assert box(account.id)[0] == "online"


def test_the_box_closes_at_the_end_of_the_day(shop, clock, published):
    account, operator = shop
    clock.move_to(at(MONDAY, "16:59:00"))
    heartbeat(operator)
    services.chat_box_refresh_due()
    assert box(account.id)[0] == "online"
    clock.move_to(at(MONDAY, "17:00:00"))
    published.clear()
    assert services.chat_box_refresh_due() == 1
    # Next Monday's opening is the next change.
    assert box(account.id) == ("offline", "closed", "2027-03-08T09:00:00Z")
    assert len(of_type(published, "widget.snapshot")) == 1


def test_opening_without_operators_changes_the_reason_but_records_no_flip(clock, published):
    account = make_account()
    opening_hours_set(account=account, enabled=True, timezone="UTC", weekly=NINE_TO_FIVE, exceptions=[])
    version = chat_box_snapshot(account_id=account.id)["version"]
    clock.move_to(at(MONDAY, "09:00:00"))
    assert services.chat_box_refresh_due() == 1
    assert box(account.id) == ("offline", "no_operator_online", "2027-03-01T17:00:00Z")
    assert chat_box_snapshot(account_id=account.id)["version"] == version + 1
    assert ChatBoxEvent.objects.filter(account=account).count() == 0


def test_a_groups_own_overnight_schedule_is_due_on_its_own_boundary(clock):
    account = make_account()
    night = make_group(account=account, key="night")
    operator = make_operator(account=account, status=Status.ONLINE)  # ungrouped: counts for every group
    opening_hours_set(account=account, enabled=True, timezone="UTC", weekly=NINE_TO_FIVE, exceptions=[])
    opening_hours_set(
        account=account,
        group=night,
        enabled=True,
        timezone="UTC",
        weekly={"monday": [{"from": "22:00", "to": "06:00"}]},
        exceptions=[],
    )
    store = get_store()
    # The group's 22:00 opening is earlier than the account's next opening.
    clock.move_to(at(MONDAY, "21:59:00"))
    heartbeat(operator)
    services.chat_box_refresh_due()
    assert box(account.id, "night") == ("offline", "closed", "2027-03-01T22:00:00Z")
    assert store.due_accounts(now=at(MONDAY, "21:59:59").timestamp(), limit=10) == []

    clock.move_to(at(MONDAY, "22:00:00"))
    assert services.chat_box_refresh_due() == 1
    assert box(account.id, "night") == ("online", "operators_online", "2027-03-02T06:00:00Z")
    assert box(account.id)[:2] == ("offline", "closed")

    # Across midnight it stays open; it closes at 06:00 on Tuesday.
    clock.move_to(at(MONDAY, "23:59:00"))
    heartbeat(operator)
    clock.move_to(at(MONDAY, "24:00:00"))
    assert services.chat_box_refresh_due() == 0
    clock.move_to(at(MONDAY, "29:59:00"))
    heartbeat(operator)
    clock.move_to(at(MONDAY, "30:00:00"))
    assert services.chat_box_refresh_due() == 1
    assert box(account.id, "night")[:2] == ("offline", "closed")


def test_accounts_without_opening_hours_are_never_due(clock):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    heartbeat(operator)
    assert box(account.id) == ("online", "operators_online", None)
    clock.shift(datetime.timedelta(days=8))
    assert services.chat_box_refresh_due() == 0


def test_an_account_that_fails_to_refresh_does_not_hold_back_the_others(clock, monkeypatch, published):
    broken, healthy = make_account(), make_account()
    for account in (broken, healthy):
        opening_hours_set(account=account, enabled=True, timezone="UTC", weekly=NINE_TO_FIVE, exceptions=[])
    break_recompute_of(monkeypatch, broken.id)
    clock.move_to(at(MONDAY, "09:00:00"))
    published.clear()
    assert services.chat_box_refresh_due() == 2
    assert box(healthy.id)[1] == "no_operator_online"
    assert [m["snapshot"]["reason"] for _g, m in of_type(published, "widget.snapshot")] == ["no_operator_online"]
    # The broken one stays due, to be retried.
    assert get_store().due_accounts(now=at(MONDAY, "09:00:01").timestamp(), limit=10) == [broken.id]
