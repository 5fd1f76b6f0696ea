"""Status changes are limited per operator: ten in ten seconds, however they are
asked for (socket, REST, dashboard form), and a refusal touches no database.
What the system does (sweep, logout, deactivation, an admin switching someone
offline) is never limited."""

import datetime as dt

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Operator, Status
from presence import events, services
from presence.models import Source, StatusEvent
from presence.services.status import STATUS_CHANGE_LIMIT, StatusChangeLimited
from presence.store import StoreUnavailable, get_store
from tests.api.conftest import token_client
from tests.factories import make_account, make_operator, make_token, owner_of
from tests.presence.conftest import Socket, committed_db, count_queries, of_type, token_headers

# A whole multiple of the 10 s window, plus 3 s: the window ends 7 s later.
WINDOW_START = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
IN_WINDOW = WINDOW_START + dt.timedelta(seconds=3)
SECONDS_LEFT = 7


@pytest.fixture
def in_window():
    with time_machine.travel(IN_WINDOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def account(db):
    return make_account()


@pytest.fixture
def alice(account):
    return make_operator(account=account, name="Alice")


def nth_status(n: int) -> str:
    """Alternating, starting online: every request a real change."""
    return Status.ONLINE if n % 2 == 0 else Status.OFFLINE


def flip(operator: Operator, n: int, *, source: str = Source.API) -> bool:
    return services.operator_set_status(operator=operator, status=nth_status(n), source=source)


def status_of(operator: Operator) -> str:
    return Operator.objects.values_list("status", flat=True).get(id=operator.id)


def events_of(operator: Operator) -> list[tuple[str, str]]:
    return list(StatusEvent.objects.filter(operator=operator).order_by("at", "id").values_list("new", "source"))


def spend_the_budget_ending_online(operator: Operator) -> None:
    """Nine changes (the last one online) and one more "online": ten counted."""
    for n in range(STATUS_CHANGE_LIMIT - 1):
        flip(operator, n)
    services.operator_set_status(operator=operator, status=Status.ONLINE, source=Source.API)
    assert status_of(operator) == Status.ONLINE


# --- the service ---------------------------------------------------------------------------------


def test_ten_changes_in_ten_seconds_pass_and_the_eleventh_is_refused(alice, in_window):
    assert [flip(alice, n) for n in range(10)] == [True] * 10

    with pytest.raises(StatusChangeLimited) as refused:
        flip(alice, 10)

    # It should say when the window ends, and neither change nor record anything.
    assert refused.value.retry_after == SECONDS_LEFT
    assert status_of(alice) == Status.OFFLINE
    assert len(events_of(alice)) == 10


def test_a_refusal_touches_no_database(alice, in_window, django_assert_num_queries):
    for n in range(10):
        flip(alice, n)

    # It should be one store round trip, however long the flood.
    with django_assert_num_queries(0):
        for n in range(10, 100):
            with pytest.raises(StatusChangeLimited):
                flip(alice, n)


def test_the_operator_may_switch_again_once_the_window_has_passed(alice, in_window):
    for n in range(10):
        flip(alice, n)
    with pytest.raises(StatusChangeLimited):
        flip(alice, 10)

    in_window.shift(SECONDS_LEFT)

    # It should count afresh in the next window.
    assert flip(alice, 10) is True
    assert status_of(alice) == Status.ONLINE


def test_asking_for_the_status_one_has_counts_too(alice, in_window):
    # Knowing it changes nothing takes a query, which a refusal must not cost.
    for _ in range(10):
        services.operator_set_status(operator=alice, status=Status.OFFLINE, source=Source.MOBILE)

    # It should refuse the eleventh request, a real change or not.
    with pytest.raises(StatusChangeLimited):
        services.operator_set_status(operator=alice, status=Status.ONLINE, source=Source.MOBILE)


def test_each_operator_has_a_budget_of_their_own(account, alice, in_window):
    bob = make_operator(account=account, name="Bob")
    for n in range(10):
        flip(alice, n)

    # It should let Bob switch while Alice is refused.
    assert flip(bob, 0) is True
    with pytest.raises(StatusChangeLimited):
        flip(alice, 10)


def test_a_lost_store_lets_the_change_through(alice, in_window, monkeypatch):
    for n in range(10):
        flip(alice, n)

    def unreachable(*args, **kwargs):
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(get_store(), "count", unreachable)

    # It should rather lose the flood guard for a moment than refuse every switch.
    assert flip(alice, 10) is True


def logout(operator: Operator) -> None:
    services.presence_heartbeat(operator=operator, conn_id="phone", device="t:1")
    services.operator_logout(operator=operator, device="t:1")


def sweep(operator: Operator) -> None:
    # Switched online with no device on record: due to the sweep at once.
    assert services.presence_sweep() == 1


def deactivate(operator: Operator) -> None:
    account_services.operator_update(operator=operator, actor=owner_of(operator.account), is_active=False)


def force_offline_through_the_api(operator: Operator) -> None:
    response = token_client(owner_of(operator.account)).put(
        f"/api/v1/operators/{operator.id}/status", {"status": "offline"}
    )
    assert response.status_code == 200


def browser(operator: Operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def force_offline_in_the_dashboard(operator: Operator) -> None:
    client = browser(owner_of(operator.account))
    response = client.post(reverse("dashboard:operator_force_offline", args=[operator.id]))
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("switch_offline", "source"),
    [
        (logout, Source.LOGOUT),
        (sweep, Source.STALE_SWEEP),
        (deactivate, Source.ADMIN),
        (force_offline_through_the_api, Source.ADMIN),
        (force_offline_in_the_dashboard, Source.ADMIN),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_switching_offline_by_the_system_or_an_admin_is_never_refused(alice, in_window, switch_offline, source):
    spend_the_budget_ending_online(alice)
    with pytest.raises(StatusChangeLimited):
        services.operator_set_status(operator=alice, status=Status.OFFLINE, source=Source.API)

    switch_offline(alice)

    # It should take Alice off the box even though her own budget is spent.
    assert status_of(alice) == Status.OFFLINE
    assert events_of(alice)[-1] == (Status.OFFLINE, source)


# --- REST ------------------------------------------------------------------------------------------


def test_the_eleventh_put_of_my_status_is_429_with_retry_after(alice, in_window):
    client = token_client(alice)
    codes = [client.put("/api/v1/me/status", {"status": nth_status(n)}).status_code for n in range(10)]

    refused = client.put("/api/v1/me/status", {"status": "online"})

    # It should be refused with the seconds to wait, and nothing recorded.
    assert codes == [200] * 10
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(SECONDS_LEFT)
    assert "Too many status changes." in refused.json()["detail"]
    assert status_of(alice) == Status.OFFLINE
    assert len(events_of(alice)) == 10


def test_an_admin_forcing_a_colleague_online_counts_against_that_colleague(account, alice, in_window):
    as_owner = token_client(owner_of(account))
    path = f"/api/v1/operators/{alice.id}/status"
    for n in range(10):
        flip(alice, n)

    refused = as_owner.put(path, {"status": "online"})

    # It should refuse the admin as it would Alice: the same change, the same cost.
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(SECONDS_LEFT)
    assert status_of(alice) == Status.OFFLINE

    in_window.shift(SECONDS_LEFT)
    codes = [as_owner.put(path, {"status": "online"}).status_code for _ in range(10)]
    assert codes == [200] * 10
    # Ten forced "online"s spent Alice's new window: her own switch waits too.
    with pytest.raises(StatusChangeLimited):
        services.operator_set_status(operator=alice, status=Status.OFFLINE, source=Source.MOBILE)


# --- the dashboard's form without JavaScript ---------------------------------------------------------


def test_the_dashboard_form_says_when_to_try_again_instead_of_failing(alice, in_window):
    client = browser(alice)
    for n in range(10):
        client.post(reverse("dashboard:status"), {"status": nth_status(n)})

    response = client.post(reverse("dashboard:status"), {"status": "online"}, follow=True)

    # It should show the page again with the message, and change nothing.
    assert response.status_code == 200
    assert f"Too many status changes. Try again in {SECONDS_LEFT} seconds." in [
        str(m) for m in response.context["messages"]
    ]
    assert status_of(alice) == Status.OFFLINE


# --- the operator socket -----------------------------------------------------------------------------

FLOOD = 1000


async def frames_until_ack(socket: Socket) -> list[dict]:
    """Everything the socket got before the answer to a heartbeat sent now:
    frames are handled in order, so every frame sent before has been."""
    await socket.send({"type": "heartbeat"})
    frames = []
    while (frame := await socket.receive(timeout=30))["type"] != "heartbeat_ack":
        frames.append(frame)
    return frames


@committed_db
async def test_a_flood_of_set_status_frames_makes_ten_changes_and_the_socket_keeps_working(published):
    def operator_with_token() -> tuple[Operator, str]:
        alice = make_operator(account=make_account(), name="Alice")
        return alice, make_token(alice, is_mobile=True)

    alice, key = await database_sync_to_async(operator_with_token)()
    with time_machine.travel(IN_WINDOW, tick=False):
        socket = Socket(token_headers(key))
        assert await socket.connect()
        await socket.receive_until(lambda m: m["type"] == "hello")
        published.clear()

        for n in range(10):
            await socket.send({"type": "set_status", "status": nth_status(n)})
        first = await frames_until_ack(socket)
        with count_queries() as queries:
            for n in range(10, FLOOD):
                await socket.send({"type": "set_status", "status": nth_status(n)})
            rest = await frames_until_ack(socket)
        await socket.close()

    refusals = [frame for frame in first + rest if frame["type"] == "error"]
    recorded = await database_sync_to_async(lambda: len(events_of(alice)))()
    # It should make ten changes, refuse the rest with the wait and no query, and stay open.
    assert refusals == [{"type": "error", "error": "rate_limited", "retry_after": SECONDS_LEFT}] * (FLOOD - 10)
    assert queries.sql == []
    assert recorded == 10
    dashboards = [group for group, _message in published if group == events.account_group(alice.account_id)]
    widgets = [group for group, _message in published if group == events.widget_group(alice.account_id)]
    assert (len(of_type(published, "operator.status")), len(dashboards), len(widgets)) == (10, 20, 10)
