"""Logout ends one device; the last device's logout ends presence at once.
Logging in or connecting never switches anyone online."""

import pytest

from accounts.models import Operator, Status
from presence import services
from presence.models import Source, StatusEvent
from presence.selectors import chat_box_snapshot, operators_present
from tests.factories import make_account, make_operator
from tests.presence.conftest import committed_db, of_type

GRACE = 120

pytestmark = committed_db


def connect(operator: Operator, conn: str, device: str) -> None:
    services.presence_heartbeat(operator=operator, conn_id=conn, device=device)


def status_of(operator: Operator) -> str:
    return Operator.objects.values_list("status", flat=True).get(id=operator.id)


def events_of(operator: Operator) -> list[tuple[str, str]]:
    return list(StatusEvent.objects.filter(operator=operator).values_list("new", "source"))


@pytest.fixture
def alice(clock):
    operator = make_operator(account=make_account(stale_after_seconds=GRACE), status=Status.ONLINE)
    connect(operator, "laptop-tab", "s:laptop")
    connect(operator, "phone-app", "t:1")
    return operator


def test_logout_while_another_device_is_live_changes_nothing(alice, published):
    assert services.operator_logout(operator=alice, device="s:laptop") is False
    assert status_of(alice) == Status.ONLINE
    assert events_of(alice) == []
    assert operators_present(account_id=alice.account_id) == {alice.id}
    assert of_type(published, "operator.status") == []
    # Only that device's sockets are told to close.
    assert [m for _g, m in of_type(published, "operator.logout")] == [{"type": "operator.logout", "device": "s:laptop"}]


def test_logout_from_the_last_device_switches_offline_at_once(alice, clock, published):
    services.operator_logout(operator=alice, device="s:laptop")
    clock.shift(1)
    assert services.operator_logout(operator=alice, device="t:1") is True
    assert status_of(alice) == Status.OFFLINE
    assert events_of(alice) == [(Status.OFFLINE, Source.LOGOUT)]
    assert operators_present(account_id=alice.account_id) == set()
    assert chat_box_snapshot(account_id=alice.account_id)["status"] == Status.OFFLINE
    assert [m["source"] for _g, m in of_type(published, "operator.status")] == ["logout"]


def test_the_closing_socket_of_a_logged_out_device_does_not_bring_its_operator_back(alice, clock):
    services.operator_logout(operator=alice, device="s:laptop")
    services.operator_logout(operator=alice, device="t:1")
    clock.shift(1)
    services.presence_disconnect(operator=alice, conn_id="laptop-tab")
    services.presence_disconnect(operator=alice, conn_id="phone-app")
    assert operators_present(account_id=alice.account_id) == set()


def test_a_device_that_merely_closed_does_not_count_as_live(alice, clock):
    services.presence_disconnect(operator=alice, conn_id="phone-app")
    clock.shift(1)
    # The phone is within its grace period, but that is for accidents: a
    # deliberate logout of the only connected device ends presence now.
    assert services.operator_logout(operator=alice, device="s:laptop") is True
    assert status_of(alice) == Status.OFFLINE


def test_logout_of_an_operator_already_offline_records_nothing(clock):
    operator = make_operator(account=make_account(), status=Status.OFFLINE)
    connect(operator, "tab", "s:laptop")
    assert services.operator_logout(operator=operator, device="s:laptop") is False
    assert events_of(operator) == []
    assert operators_present(account_id=operator.account_id) == set()


def test_connecting_a_new_device_never_switches_online(clock):
    operator = make_operator(account=make_account(), status=Status.OFFLINE)
    connect(operator, "tab", "s:laptop")
    connect(operator, "app", "t:1")
    assert status_of(operator) == Status.OFFLINE
    assert events_of(operator) == []
    assert chat_box_snapshot(account_id=operator.account_id)["status"] == Status.OFFLINE


def test_coming_back_after_the_sweep_does_not_restore_online(alice, clock):
    for conn in ("laptop-tab", "phone-app"):
        services.presence_disconnect(operator=alice, conn_id=conn)
    clock.shift(GRACE + 1)
    assert services.presence_sweep() == 1
    connect(alice, "laptop-tab-2", "s:laptop")
    assert status_of(alice) == Status.OFFLINE
    assert events_of(alice) == [(Status.OFFLINE, Source.STALE_SWEEP)]
