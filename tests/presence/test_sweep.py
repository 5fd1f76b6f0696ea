"""The stale sweep, the chat box snapshot and what they publish.

Time is frozen and moved with ``time_machine``; the grace period is never slept.
"""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Operator, Status
from presence import events, services
from presence.models import ChatBoxEvent, Source, StatusEvent
from presence.selectors import chat_box_snapshot, operators_present
from presence.services import chatbox, connections
from presence.store import CLAIM_LEASE_SECONDS, OperatorRef, get_store
from tests.factories import make_account, make_group, make_operator
from tests.presence.conftest import break_recompute_of, committed_db, of_type

GRACE = 120

# Real commits: services publish and refresh in ``on_commit``, and some tests
# race threads on the database.
pytestmark = committed_db


def heartbeat(operator: Operator, *, conn: str = "c1", device: str = "s:laptop") -> None:
    services.presence_heartbeat(operator=operator, conn_id=conn, device=device)


def close(operator: Operator, *, conn: str = "c1") -> int:
    return services.presence_disconnect(operator=operator, conn_id=conn)


def status_of(operator: Operator) -> str:
    return Operator.objects.values_list("status", flat=True).get(id=operator.id)


def sweep_events(operator: Operator) -> list[tuple[str, str, str]]:
    return list(StatusEvent.objects.filter(operator=operator).values_list("old", "new", "source"))


@pytest.fixture
def online_operator(clock):
    """An online operator with one live connection; the chat box is online."""
    account = make_account(stale_after_seconds=GRACE)
    operator = make_operator(account=account, status=Status.ONLINE)
    heartbeat(operator)
    assert chat_box_snapshot(account_id=account.id)["status"] == Status.ONLINE
    return operator


# --- the grace period ---------------------------------------------------------------------


def test_it_marks_operator_offline_after_grace(online_operator, clock, published):
    close(online_operator)
    clock.shift(GRACE - 1)
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE
    assert published == []

    clock.shift(1)
    assert services.presence_sweep() == 1
    assert status_of(online_operator) == Status.OFFLINE
    assert sweep_events(online_operator) == [(Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP)]
    assert chat_box_snapshot(account_id=online_operator.account_id)["status"] == Status.OFFLINE
    assert [m for _g, m in of_type(published, "operator.status")] == [
        {"type": "operator.status", "operator_id": online_operator.id, "status": "offline", "source": "stale_sweep"}
    ]


@pytest.mark.parametrize(("ttl", "grace", "offline_after"), [(75, 120, 120), (75, 30, 75)])
def test_a_connection_that_died_silently_counts_for_the_longer_of_ttl_and_grace(
    clock, settings, ttl, grace, offline_after
):
    settings.PRESENCE_CONNECTION_TTL_SECONDS = ttl
    operator = make_operator(account=make_account(stale_after_seconds=grace), status=Status.ONLINE)
    services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1")
    clock.shift(offline_after - 0.001)
    assert services.presence_sweep() == 0
    clock.shift(0.001)
    assert services.presence_sweep() == 1
    assert status_of(operator) == Status.OFFLINE


def test_heartbeats_keep_an_operator_online_past_the_grace_period(online_operator, clock):
    for _ in range(10):
        clock.shift(25)
        heartbeat(online_operator)
        assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE
    assert sweep_events(online_operator) == []


def test_a_second_live_device_keeps_the_operator_online_when_the_first_closes(online_operator, clock):
    heartbeat(online_operator, conn="phone", device="t:1")
    close(online_operator, conn="c1")
    clock.shift(GRACE + 1)
    heartbeat(online_operator, conn="phone", device="t:1")
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE


def test_the_sweep_leaves_offline_operators_alone(clock):
    operator = make_operator(account=make_account(), status=Status.OFFLINE)
    heartbeat(operator)
    close(operator)
    clock.shift(GRACE + 1)
    assert services.presence_sweep() == 0
    assert sweep_events(operator) == []
    assert operators_present(account_id=operator.account_id) == set()


def test_one_sweep_flips_every_expired_operator_across_accounts(clock, published):
    operators = [
        make_operator(account=account, status=Status.ONLINE)
        for account in (make_account(), make_account())
        for _ in range(3)
    ]
    for operator in operators:
        heartbeat(operator, conn=f"c{operator.id}")
    clock.shift(GRACE + 1)
    published.clear()
    assert services.presence_sweep() == 6
    assert StatusEvent.objects.filter(source=Source.STALE_SWEEP).count() == 6
    assert len(of_type(published, "operator.status")) == 6
    # One snapshot per account, to its widgets and to its operators.
    assert len(of_type(published, "widget.snapshot")) == 2
    assert len(of_type(published, "operator.chat_box")) == 2


# --- racing sweeps and heartbeats -----------------------------------------------------------


def run_together(function, *, threads: int = 2) -> list:
    """Start ``function`` in several threads at the same instant; their results.
    Any exception in a thread fails the test."""
    barrier = threading.Barrier(threads)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(function())
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == threads
    return results


def test_two_sweeps_at_once_flip_the_operator_once_and_publish_once(clock, published):
    operator = make_operator(account=make_account(), status=Status.ONLINE)
    heartbeat(operator)
    close(operator)
    clock.shift(GRACE + 1)
    published.clear()
    results = run_together(services.presence_sweep)
    assert sorted(results) == [0, 1]
    assert sweep_events(operator) == [(Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP)]
    assert len(of_type(published, "operator.status")) == 1
    assert len(of_type(published, "widget.snapshot")) == 1


# The in-memory SQLite database of the embedded test pass refuses a second
# concurrent writer ("table is locked") instead of waiting like the file
# database of a real embedded installation, so this race runs on PostgreSQL.
@pytest.mark.production_only
def test_two_sweepers_given_the_same_operators_flip_each_once(clock, published):
    """Past the store's claim, the conditional UPDATE alone decides who flips."""
    account = make_account()
    operators = [make_operator(account=account, status=Status.ONLINE) for _ in range(5)]
    claimed = [OperatorRef(account.id, operator.id) for operator in operators]
    published.clear()
    results = run_together(lambda: connections._sweep_claimed(claimed, now=timezone.now()))
    assert sum(results) == 5
    assert StatusEvent.objects.filter(account=account, source=Source.STALE_SWEEP).count() == 5
    assert len(of_type(published, "operator.status")) == 5


def test_a_heartbeat_landing_right_after_the_claim_keeps_the_operator_online(
    online_operator, clock, monkeypatch, published
):
    close(online_operator)
    clock.shift(GRACE + 1)
    store = get_store()
    claim = store.claim_expired

    def claim_then_heartbeat(**kwargs):
        claimed = claim(**kwargs)
        # The device comes back between the claim and the database update.
        heartbeat(online_operator, conn="c2")
        return claimed

    monkeypatch.setattr(store, "claim_expired", claim_then_heartbeat)
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE
    assert sweep_events(online_operator) == []
    assert of_type(published, "operator.status") == []
    assert chat_box_snapshot(account_id=online_operator.account_id)["status"] == Status.ONLINE


def test_a_heartbeat_just_before_the_sweep_keeps_the_operator_online(online_operator, clock):
    close(online_operator)
    clock.shift(GRACE - 1)
    heartbeat(online_operator, conn="c2")
    clock.shift(2)
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE


def test_a_sweep_that_fails_in_the_database_is_retried_by_the_next(online_operator, clock, monkeypatch):
    close(online_operator)
    clock.shift(GRACE + 1)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(connections, "_switch_offline", broken)
    with pytest.raises(RuntimeError):
        services.presence_sweep()
    monkeypatch.undo()
    assert services.presence_sweep() == 1
    assert sweep_events(online_operator) == [(Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP)]


def test_operators_claimed_by_a_sweep_that_died_are_swept_by_a_later_one(online_operator, clock, monkeypatch):
    close(online_operator)
    clock.shift(GRACE + 1)

    def killed(*args, **kwargs):
        raise SystemExit("worker killed between the claim and the database update")

    monkeypatch.setattr(connections, "_sweep_claimed", killed)
    with pytest.raises(SystemExit):
        services.presence_sweep()
    monkeypatch.undo()
    assert status_of(online_operator) == Status.ONLINE
    assert services.presence_sweep() == 0  # still leased to the dead sweep
    clock.shift(CLAIM_LEASE_SECONDS)
    assert services.presence_sweep() == 1
    assert status_of(online_operator) == Status.OFFLINE


def test_a_flip_is_never_stored_without_its_status_event(online_operator, clock):
    close(online_operator)
    clock.shift(GRACE + 1)

    def audit_rows_fail(execute, sql, params, many, context):
        if f"INSERT INTO {StatusEvent._meta.db_table}" in sql.replace('"', ""):
            raise RuntimeError("disk full")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(audit_rows_fail), pytest.raises(RuntimeError):
        services.presence_sweep()
    assert status_of(online_operator) == Status.ONLINE
    assert not StatusEvent.objects.filter(operator=online_operator, source=Source.STALE_SWEEP).exists()


# --- a wiped store ----------------------------------------------------------------------------


def test_after_the_store_is_wiped_online_operators_get_one_grace_period(online_operator, clock, published):
    account_id = online_operator.account_id
    get_store().reset()  # what a Redis FLUSHALL or an empty restart does to our keys
    clock.shift(5)
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE
    assert operators_present(account_id=account_id) == {online_operator.id}
    # The snapshot went with the data; the reseed rebuilt it from the seeded presence.
    assert chat_box_snapshot(account_id=account_id)["status"] == Status.ONLINE

    clock.shift(GRACE - 1)
    assert services.presence_sweep() == 0
    clock.shift(1)
    assert services.presence_sweep() == 1
    assert sweep_events(online_operator) == [(Status.ONLINE, Status.OFFLINE, Source.STALE_SWEEP)]
    assert chat_box_snapshot(account_id=account_id)["status"] == Status.OFFLINE


def test_after_a_wipe_a_device_heard_from_again_keeps_its_own_deadline(online_operator, clock):
    get_store().reset()
    clock.shift(5)
    heartbeat(online_operator, conn="c9")
    services.presence_sweep()
    clock.shift(GRACE + 1)
    heartbeat(online_operator, conn="c9")
    assert services.presence_sweep() == 0
    assert status_of(online_operator) == Status.ONLINE


def test_the_reseed_happens_once_per_wipe(online_operator, clock):
    get_store().reset()
    services.presence_sweep()
    clock.shift(GRACE + 1)
    assert services.presence_sweep() == 1
    # Not reseeded again: the operator stays swept.
    clock.shift(1)
    assert services.presence_sweep() == 0
    assert operators_present(account_id=online_operator.account_id) == set()


def test_after_a_wipe_the_truth_is_published_at_once_and_again_2_and_8_s_later(online_operator, clock, published):
    # What is published before a web process's channel-layer subscription has
    # reconnected to the restarted Redis reaches none of its sockets.
    StatusEvent.objects.create(  # the resync publishes the status of every operator ever switched
        account_id=online_operator.account_id,
        operator=online_operator,
        old=Status.OFFLINE,
        new=Status.ONLINE,
        source=Source.DASHBOARD,
        at=timezone.now(),
    )

    def resyncs() -> int:
        """How many times the truth was published in full since the last look."""
        told = [m["operator_id"] for _group, m in of_type(published, "operator.status")]
        assert told == [online_operator.id] * len(told)
        assert len(of_type(published, "widget.snapshot")) == len(told)
        published.clear()
        return len(told)

    get_store().reset()
    services.presence_sweep()
    assert resyncs() == 1
    # The boundary runs take up the later moments, each once.
    runs = []
    for _second in range(12):
        clock.shift(1)
        services.chat_box_refresh_due()
        runs.append(resyncs())
    assert runs == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    clock.shift(1)
    services.presence_sweep()  # a store that kept its data: no reseed, nothing scheduled
    for _second in range(10):
        clock.shift(1)
        services.chat_box_refresh_due()
    assert resyncs() == 0


def test_due_resync_moments_are_claimed_once(online_operator, clock):
    store = get_store()
    services.presence_resync_later(now=timezone.now())
    clock.shift(9)
    assert [store.resync_claim(now=timezone.now().timestamp()) for _ in range(2)] == [True, False]


def test_after_a_failover_a_status_change_does_not_wait_for_a_lock_lost_with_the_old_master(
    online_operator, clock, published
):
    store = get_store()
    # A refresh of this account held its lock when the master died; its release died with it.
    lock = chatbox.refresh_lock(online_operator.account_id)
    orphan = store.locks([lock], timeout=30)
    assert orphan.__enter__() == {lock}

    services.presence_after_failover(now=timezone.now())
    started = time.monotonic()
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.API)

    assert time.monotonic() - started < 1  # not the 10 s a refresh waits for a held lock
    snapshots = [m["snapshot"] for _g, m in of_type(published, "widget.snapshot")]
    assert [s["status"] for s in snapshots] == ["offline"]
    # And the truth is published again twice, as after any failover.
    clock.shift(9)
    assert [store.resync_claim(now=timezone.now().timestamp()) for _ in range(2)] == [True, False]
    orphan.__exit__(None, None, None)


def test_after_a_failover_widgets_take_the_truth_over_a_version_the_old_master_gave_out(
    online_operator, clock, published
):
    account_id = online_operator.account_id
    # The old master stored and pushed version V + 1 (offline, say), then died
    # before its replica had it: widgets hold V + 1, the new master still V.
    stored = chat_box_snapshot(account_id=account_id)
    seen = stored["version"] + 1

    clock.shift(5)  # Sentinel takes seconds to see the master down and promote the replica
    services.presence_after_failover(now=timezone.now())
    clock.shift(3)
    services.chat_box_refresh_due(now=timezone.now())  # the first resync

    pushed = [m["snapshot"] for _g, m in of_type(published, "widget.snapshot") if m["snapshot"]]
    assert pushed and all(s["status"] == Status.ONLINE and s["version"] > seen for s in pushed)
    # A change after it goes on above it too.
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.API)
    assert chat_box_snapshot(account_id=account_id)["version"] > pushed[-1]["version"]


# --- the snapshot: edge-triggered publishing ----------------------------------------------------


def test_a_recompute_that_changes_nothing_publishes_nothing(online_operator, clock, published):
    version = chat_box_snapshot(account_id=online_operator.account_id)["version"]
    for _ in range(3):
        clock.shift(1)
        assert services.chat_box_refresh(account_id=online_operator.account_id) is None
    assert published == []
    assert chat_box_snapshot(account_id=online_operator.account_id)["version"] == version


def test_the_version_bumps_exactly_once_per_real_change(online_operator, clock, published):
    account_id = online_operator.account_id
    first = chat_box_snapshot(account_id=account_id)["version"]
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.API)
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.API)
    services.chat_box_refresh(account_id=account_id)
    assert chat_box_snapshot(account_id=account_id)["version"] == first + 1
    services.operator_set_status(operator=online_operator, status=Status.ONLINE, source=Source.API)
    assert chat_box_snapshot(account_id=account_id)["version"] == first + 2
    snapshots = [m["snapshot"] for _g, m in of_type(published, "widget.snapshot")]
    assert [(s["status"], s["version"]) for s in snapshots] == [("offline", first + 1), ("online", first + 2)]


def test_the_published_snapshot_is_the_stored_one(online_operator, clock, published):
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.API)
    stored = chat_box_snapshot(account_id=online_operator.account_id)
    assert [m["snapshot"] for _g, m in of_type(published, "widget.snapshot")] == [stored]
    assert [m["snapshot"] for _g, m in of_type(published, "operator.chat_box")] == [stored]


def test_chat_box_transitions_are_recorded(clock):
    account = make_account()
    seller = make_operator(account=account, status=Status.ONLINE)
    make_group(account=account, key="sales", members=[seller])
    make_group(account=account, key="support")
    services.chat_box_refresh(account_id=account.id)
    assert ChatBoxEvent.objects.filter(account=account).count() == 0

    clock.shift(1)
    heartbeat(seller)
    assert list(ChatBoxEvent.objects.filter(account=account).values_list("group_key", "old", "new", "reason")) == [
        ("sales", "offline", "online", "operators_online")
    ]
    clock.shift(1)
    services.operator_set_status(operator=seller, status=Status.OFFLINE, source=Source.DASHBOARD)
    latest = ChatBoxEvent.objects.filter(account=account).first()
    assert (latest.group_key, latest.old, latest.new) == ("sales", "online", "offline")
    assert latest.reason == "no_operator_online"
    assert latest.version == chat_box_snapshot(account_id=account.id)["version"]
    assert ChatBoxEvent.objects.filter(account=account).count() == 2


def test_an_ungrouped_operator_flips_the_account_box_and_every_group(clock):
    account = make_account()
    make_group(account=account, key="sales")
    helper = make_operator(account=account, status=Status.ONLINE)
    services.chat_box_refresh(account_id=account.id)
    heartbeat(helper)
    flips = set(ChatBoxEvent.objects.filter(account=account).values_list("group_key", "new"))
    assert flips == {("", "online"), ("sales", "online")}


def test_a_deleted_account_stops_being_due(clock):
    account = make_account()
    store = get_store()
    store.snapshot_store(account_id=account.id, body='{"x":1}', due_at=0.0, now=1.0)
    account_id = account.id
    account.delete()
    assert services.chat_box_refresh_due() == 1
    assert store.due_accounts(now=timezone.now().timestamp(), limit=10) == []
    assert chat_box_snapshot(account_id=account_id) is None


def test_a_failing_recompute_of_one_account_does_not_cost_the_others_their_pushes(clock, monkeypatch, published):
    first, second = (make_operator(account=make_account(), status=Status.ONLINE) for _ in range(2))
    for operator in (first, second):
        heartbeat(operator, conn=f"c{operator.id}")
    clock.shift(GRACE + 1)
    published.clear()
    break_recompute_of(monkeypatch, first.account_id)
    assert services.presence_sweep() == 2
    pushed = {m["operator_id"] for _g, m in of_type(published, "operator.status")}
    assert pushed == {first.id, second.id}
    assert [m["snapshot"]["status"] for _g, m in of_type(published, "widget.snapshot")] == ["offline"]
    assert chat_box_snapshot(account_id=second.account_id)["status"] == Status.OFFLINE


def test_after_a_wipe_the_sweep_publishes_the_truth_again(online_operator, clock, published):
    """Pushes made while Redis was down were lost (pub/sub queues nothing):
    the sweep that notices the wipe publishes every account's state once more."""
    services.operator_set_status(operator=online_operator, status=Status.OFFLINE, source=Source.MOBILE)
    quiet = make_account()  # nobody there, nothing ever changed
    get_store().reset()
    clock.shift(1)
    heartbeat(online_operator)  # the app is heard from again: the snapshot is rebuilt, unchanged
    stored = chat_box_snapshot(account_id=online_operator.account_id)
    published.clear()

    services.presence_sweep()
    assert [m for _g, m in of_type(published, "operator.status")] == [
        {"type": "operator.status", "operator_id": online_operator.id, "status": "offline", "source": "mobile"}
    ]
    snapshots = {g: m["snapshot"] for g, m in of_type(published, "widget.snapshot")}
    assert snapshots[events.widget_group(online_operator.account_id)] == stored
    assert snapshots[events.widget_group(quiet.id)]["status"] == Status.OFFLINE
    # Once per wipe, not on every sweep.
    published.clear()
    clock.shift(1)
    services.presence_sweep()
    assert published == []
