"""The presence store contract, run against both implementations.

The in-memory store serves the embedded mode, the Redis store production; the
services rely on them behaving the same, so one suite runs against both.
Times are plain POSIX seconds: the store never reads a clock of its own.
"""

import asyncio
import json
import threading
import time
import uuid

import pytest
from django.conf import settings

from presence.rules import presence_hold
from presence.store import CLAIM_LEASE_SECONDS, MemoryStore, OperatorRef, RedisStore, SnapshotWrite, StoreUnavailable

T0 = 1_900_000_000.0  # a fixed instant; the store only compares what it is given
TTL = 75
GRACE = 120
ALICE = OperatorRef(1, 10)
BOB = OperatorRef(1, 11)
CAROL = OperatorRef(2, 20)


def _redis_param():
    marks = [pytest.mark.production_only] if settings.EMBEDDED else []
    return pytest.param("redis", id="redis", marks=marks)


@pytest.fixture(params=[pytest.param("memory", id="memory"), _redis_param()])
def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    # Its own prefix: the contract is tested on a store nothing else touches.
    redis_store = RedisStore(settings.REDIS_URL, f"{settings.REDIS_PREFIX}:contract:{uuid.uuid4().hex}")
    yield redis_store
    redis_store.reset()
    redis_store.client.close()


def heartbeat(store, ref, conn_id, *, at, device="s:laptop", ttl=TTL, grace=GRACE):
    """What ``presence_heartbeat`` asks of the store."""
    return store.touch(
        ref=ref, conn_id=conn_id, device=device, now=at, present_until=at + presence_hold(ttl=ttl, grace=grace)
    )


def disconnect(store, *, ref, conn_id, now, ttl=TTL, grace=GRACE):
    """What ``presence_disconnect`` asks of the store."""
    return store.disconnect(
        ref=ref, conn_id=conn_id, now=now, ttl=ttl, hold=presence_hold(ttl=ttl, grace=grace), grace=grace
    )


def until(store, ref):
    return store.present_until_map(account_id=ref.account_id).get(ref.operator_id)


# --- connections and presence ---------------------------------------------------


def test_the_first_heartbeat_makes_an_operator_present(store):
    assert heartbeat(store, ALICE, "c1", at=T0) is True
    assert until(store, ALICE) == T0 + GRACE


def test_further_heartbeats_while_present_are_not_news(store):
    heartbeat(store, ALICE, "c1", at=T0)
    assert heartbeat(store, ALICE, "c1", at=T0 + 25) is False
    assert heartbeat(store, ALICE, "c2", at=T0 + 30, device="t:7") is False
    assert until(store, ALICE) == T0 + 30 + GRACE


def test_a_heartbeat_after_presence_ran_out_makes_the_operator_present_again(store):
    heartbeat(store, ALICE, "c1", at=T0)
    assert heartbeat(store, ALICE, "c1", at=T0 + GRACE) is True


def test_a_heartbeat_never_shortens_presence(store):
    heartbeat(store, ALICE, "c1", at=T0, grace=600)
    heartbeat(store, ALICE, "c1", at=T0 + 1, grace=30)
    assert until(store, ALICE) == T0 + 600


def test_an_async_touch_is_a_touch(store):
    async def beats():
        first = await store.atouch(ref=ALICE, conn_id="c1", device="s:laptop", now=T0, present_until=T0 + GRACE)
        again = await store.atouch(ref=ALICE, conn_id="c2", device="s:phone", now=T0 + 1, present_until=T0 + 1 + GRACE)
        return first, again

    assert asyncio.run(beats()) == (True, False)
    assert until(store, ALICE) == T0 + 1 + GRACE
    assert [conn.conn_id for conn in store.connections(ref=ALICE, now=T0 + 2, ttl=TTL)] == ["c1", "c2"]
    # And it is news again once presence ran out, as with touch.
    assert heartbeat(store, ALICE, "c1", at=T0 + 1 + GRACE) is True


def test_connections_lists_only_live_connections(store):
    heartbeat(store, ALICE, "old", at=T0, device="s:a")
    heartbeat(store, ALICE, "new", at=T0 + 50, device="t:9")
    live = store.connections(ref=ALICE, now=T0 + TTL + 1, ttl=TTL)
    assert [(conn.conn_id, conn.device, conn.last_heartbeat) for conn in live] == [("new", "t:9", T0 + 50)]


def test_presence_is_kept_per_account(store):
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, CAROL, "c2", at=T0 + 5)
    assert store.present_until_map(account_id=1) == {10: T0 + GRACE}
    assert store.present_until_map(account_id=2) == {20: T0 + 5 + GRACE}


@pytest.mark.parametrize(
    ("ttl", "grace", "expected_until"),
    [
        # A live connection keeps its operator present for the longer of TTL and grace.
        (75, 120, T0 + 120),
        (75, 30, T0 + 75),
        (300, 120, T0 + 300),
    ],
)
def test_a_live_connection_keeps_presence_for_the_longer_of_ttl_and_grace(store, ttl, grace, expected_until):
    heartbeat(store, ALICE, "c1", at=T0, ttl=ttl, grace=grace)
    assert until(store, ALICE) == expected_until


def test_closing_the_last_connection_keeps_the_operator_present_for_the_grace_period(store):
    heartbeat(store, ALICE, "c1", at=T0)
    live = disconnect(store, ref=ALICE, conn_id="c1", now=T0 + 10, ttl=TTL, grace=GRACE)
    assert live == 0
    assert until(store, ALICE) == T0 + 10 + GRACE
    assert store.connections(ref=ALICE, now=T0 + 10, ttl=TTL) == []


@pytest.mark.parametrize(
    ("ttl", "grace", "expected_until"),
    [
        # The other device's own deadline (heartbeat at T0+5) wins when it is later.
        (75, 120, T0 + 10 + 120),
        (200, 30, T0 + 5 + 200),
    ],
)
def test_closing_one_of_two_connections_keeps_the_later_deadline(store, ttl, grace, expected_until):
    heartbeat(store, ALICE, "c1", at=T0, ttl=ttl, grace=grace)
    heartbeat(store, ALICE, "c2", at=T0 + 5, device="t:7", ttl=ttl, grace=grace)
    live = disconnect(store, ref=ALICE, conn_id="c1", now=T0 + 10, ttl=ttl, grace=grace)
    assert live == 1
    assert until(store, ALICE) == expected_until


def test_closing_prunes_connections_that_died_silently(store):
    heartbeat(store, ALICE, "dead", at=T0)
    heartbeat(store, ALICE, "c2", at=T0 + 100)
    live = disconnect(store, ref=ALICE, conn_id="c2", now=T0 + 101, ttl=TTL, grace=GRACE)
    assert live == 0
    assert store.connections(ref=ALICE, now=T0, ttl=10_000) == []


def test_closing_a_connection_a_logout_already_ended_does_not_bring_the_operator_back(store):
    heartbeat(store, ALICE, "c1", at=T0)
    store.logout(ref=ALICE, device="s:laptop", now=T0 + 10, ttl=TTL)
    disconnect(store, ref=ALICE, conn_id="c1", now=T0 + 11, ttl=TTL, grace=GRACE)
    assert until(store, ALICE) == T0 + 10


def test_closing_a_connection_after_its_operator_was_swept_changes_nothing(store):
    heartbeat(store, ALICE, "c1", at=T0)
    assert store.claim_expired(now=T0 + GRACE, limit=10) == [ALICE]
    store.release_claimed(refs=[ALICE], claimed_at=T0 + GRACE)  # the sweep is done with ALICE
    assert disconnect(store, ref=ALICE, conn_id="c1", now=T0 + GRACE + 1, ttl=TTL, grace=GRACE) == 0
    assert until(store, ALICE) is None
    assert store.claim_expired(now=T0 + 10_000, limit=10) == []


# --- logout ---------------------------------------------------------------------------


def test_logout_with_another_live_device_changes_nothing(store):
    heartbeat(store, ALICE, "tab1", at=T0, device="s:laptop")
    heartbeat(store, ALICE, "app", at=T0 + 1, device="t:phone")
    live = store.logout(ref=ALICE, device="s:laptop", now=T0 + 2, ttl=TTL)
    assert live == 1
    assert until(store, ALICE) == T0 + 1 + GRACE
    assert [conn.conn_id for conn in store.connections(ref=ALICE, now=T0 + 2, ttl=TTL)] == ["app"]


def test_logout_of_the_last_device_ends_presence_at_once(store):
    heartbeat(store, ALICE, "tab1", at=T0, device="s:laptop")
    heartbeat(store, ALICE, "tab2", at=T0 + 1, device="s:laptop")
    live = store.logout(ref=ALICE, device="s:laptop", now=T0 + 2, ttl=TTL)
    assert live == 0
    assert until(store, ALICE) == T0 + 2
    assert store.connections(ref=ALICE, now=T0 + 2, ttl=TTL) == []
    assert store.claim_expired(now=T0 + 2, limit=10) == [ALICE]


def test_logout_ignores_devices_that_died_silently(store):
    heartbeat(store, ALICE, "old-app", at=T0, device="t:phone")
    heartbeat(store, ALICE, "tab", at=T0 + 100, device="s:laptop")
    assert store.logout(ref=ALICE, device="s:laptop", now=T0 + 101, ttl=TTL) == 0
    assert until(store, ALICE) == T0 + 101


# --- sweeping -------------------------------------------------------------------------


def test_claim_takes_only_expired_operators_and_takes_them_once(store):
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, BOB, "c2", at=T0 + 30)
    heartbeat(store, CAROL, "c3", at=T0 + 60)
    assert store.claim_expired(now=T0 + GRACE + 30, limit=10) == [ALICE, BOB]
    assert store.claim_expired(now=T0 + GRACE + 30, limit=10) == []
    assert store.present_until_map(account_id=1) == {}
    assert store.present_until_map(account_id=2) == {20: T0 + 60 + GRACE}
    assert store.connections(ref=ALICE, now=T0, ttl=TTL) == []


def test_a_claim_not_released_is_claimed_again_after_its_lease(store):
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, BOB, "c2", at=T0)
    claimed_at = T0 + GRACE
    assert store.claim_expired(now=claimed_at, limit=10) == [ALICE, BOB]
    store.release_claimed(refs=[BOB], claimed_at=claimed_at)  # BOB's claimer finished; ALICE's died
    assert store.claim_expired(now=claimed_at + CLAIM_LEASE_SECONDS - 1, limit=10) == []
    assert store.claim_expired(now=claimed_at + CLAIM_LEASE_SECONDS, limit=10) == [ALICE]


def test_releasing_a_claim_keeps_a_heartbeat_that_came_after_it(store):
    heartbeat(store, ALICE, "c1", at=T0)
    claimed_at = T0 + GRACE
    assert store.claim_expired(now=claimed_at, limit=10) == [ALICE]
    heartbeat(store, ALICE, "c1", at=claimed_at + 1)
    store.release_claimed(refs=[ALICE], claimed_at=claimed_at)
    assert until(store, ALICE) == claimed_at + 1 + GRACE
    assert store.claim_expired(now=claimed_at + CLAIM_LEASE_SECONDS, limit=10) == []
    assert store.claim_expired(now=claimed_at + 1 + GRACE, limit=10) == [ALICE]


def test_claim_stops_at_the_limit_oldest_first(store):
    heartbeat(store, BOB, "c2", at=T0 + 1)
    heartbeat(store, ALICE, "c1", at=T0)
    assert store.claim_expired(now=T0 + 1000, limit=1) == [ALICE]
    assert store.claim_expired(now=T0 + 1000, limit=1) == [BOB]


def test_a_heartbeat_after_a_claim_starts_afresh(store):
    heartbeat(store, ALICE, "c1", at=T0)
    store.claim_expired(now=T0 + GRACE, limit=10)
    assert heartbeat(store, ALICE, "c1", at=T0 + GRACE + 1) is True
    assert until(store, ALICE) == T0 + GRACE + 1 + GRACE


def test_concurrent_claims_hand_each_operator_to_exactly_one_claimer(store):
    refs = [OperatorRef(3, n) for n in range(200)]
    for n, ref in enumerate(refs):
        heartbeat(store, ref, f"c{n}", at=T0 + n / 1000)
    barrier = threading.Barrier(4)
    claimed: list[list[OperatorRef]] = []

    def claimer():
        barrier.wait()
        mine = []
        while batch := store.claim_expired(now=T0 + 10_000, limit=7):
            mine += batch
        claimed.append(mine)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    every = [ref for mine in claimed for ref in mine]
    assert sorted(every, key=lambda ref: ref.operator_id) == refs


def test_seed_gives_an_unknown_operator_a_deadline(store):
    store.seed(ref=ALICE, present_until=T0 + 30)
    assert until(store, ALICE) == T0 + 30
    assert store.claim_expired(now=T0 + 29, limit=10) == []
    assert store.claim_expired(now=T0 + 30, limit=10) == [ALICE]


def test_seed_never_overrides_what_a_heartbeat_said(store):
    heartbeat(store, ALICE, "c1", at=T0)
    store.seed(ref=ALICE, present_until=T0 + 5)
    assert until(store, ALICE) == T0 + GRACE


def test_the_epoch_is_fresh_once_and_again_after_a_wipe(store):
    assert store.ensure_epoch() is True
    assert store.ensure_epoch() is False
    store.reset()
    assert store.ensure_epoch() is True


# --- snapshots ------------------------------------------------------------------------


def snapshot(store, body, *, at, due_at=None, account_id=1):
    return store.snapshot_store(account_id=account_id, body=body, due_at=due_at, now=at)


def test_the_first_snapshot_version_comes_from_the_clock(store):
    assert snapshot(store, '{"status":"offline"}', at=T0) == int(T0 * 1000)
    assert store.snapshot_json(account_id=1) == f'{{"status":"offline","version":{int(T0 * 1000)}}}'


def test_a_snapshot_version_bumps_only_when_the_content_changes(store):
    first = snapshot(store, '{"status":"offline"}', at=T0)
    assert snapshot(store, '{"status":"offline"}', at=T0 + 1) is None
    assert snapshot(store, '{"status":"online"}', at=T0 + 2) == first + 1
    assert snapshot(store, '{"status":"online"}', at=T0 + 3) is None
    assert snapshot(store, '{"status":"offline"}', at=T0 + 4) == first + 2
    assert store.snapshot_json(account_id=1) == f'{{"status":"offline","version":{first + 2}}}'


def test_versions_after_a_wipe_are_larger_than_before_it(store):
    before = snapshot(store, '{"status":"offline"}', at=T0)
    for n in range(5):
        before = snapshot(store, f'{{"n":{n}}}', at=T0 + n)
    store.reset()
    assert store.snapshot_json(account_id=1) is None
    after = snapshot(store, '{"status":"offline"}', at=T0 + 1)
    assert after > before


def test_rebased_snapshots_keep_their_content_with_a_version_above_any_before(store):
    first = snapshot(store, '{"status":"offline"}', at=T0, account_id=1)
    snapshot(store, '{"status":"online"}', at=T0, account_id=2)
    # Many changes in one second: a version past the clock still rises by one.
    for n in range(1500):
        snapshot(store, f'{{"n":{n % 2}}}', at=T0, account_id=3)
    busy = json.loads(store.snapshot_json(account_id=3))["version"]

    assert store.snapshots_rebase(now=T0 + 1) == 3

    assert store.snapshot_json(account_id=1) == f'{{"status":"offline","version":{int((T0 + 1) * 1000)}}}'
    assert json.loads(store.snapshot_json(account_id=2))["version"] == int((T0 + 1) * 1000)
    assert json.loads(store.snapshot_json(account_id=3))["version"] == busy + 1
    # Unchanged content still stores nothing; the next change goes on from the rebased version.
    assert snapshot(store, '{"status":"offline"}', at=T0 + 2, account_id=1) is None
    assert snapshot(store, '{"status":"online"}', at=T0 + 2, account_id=1) == int((T0 + 1) * 1000) + 1 > first


def test_snapshots_are_kept_per_account(store):
    snapshot(store, '{"a":1}', at=T0, account_id=1)
    snapshot(store, '{"a":2}', at=T0, account_id=2)
    assert store.snapshot_json(account_id=1).startswith('{"a":1,')
    assert store.snapshot_json(account_id=2).startswith('{"a":2,')


def test_an_async_snapshot_read_sees_the_store_as_it_is_when_called(store):
    async def reads():
        before = await store.asnapshot_json(account_id=1)
        snapshot(store, '{"status":"online"}', at=T0)
        return before, await store.asnapshot_json(account_id=1)

    before, after = asyncio.run(reads())
    assert before is None
    assert after == store.snapshot_json(account_id=1) == f'{{"status":"online","version":{int(T0 * 1000)}}}'


def _counting_reads(redis_store):
    """The store's asyncio client for this loop, its HGETs counted: a list that
    grows by one as each read goes out, and an event set then."""
    entry = redis_store._async_client()
    sent, went_out = [], asyncio.Event()
    real = entry.client.hget

    async def hget(*args):
        sent.append(args)
        went_out.set()
        return await real(*args)

    entry.client.hget = hget
    return sent, went_out


@pytest.mark.production_only
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_async_snapshot_reads_arriving_together_share_one_round_trip(store):
    snapshot(store, '{"status":"online"}', at=T0)

    async def reads():
        sent, _went_out = _counting_reads(store)
        answers = await asyncio.gather(*(store.asnapshot_json(account_id=1) for _ in range(200)))
        return sent, answers

    sent, answers = asyncio.run(reads())
    assert len(sent) == 1
    assert set(answers) == {store.snapshot_json(account_id=1)}


@pytest.mark.production_only
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_an_async_snapshot_read_never_shares_a_round_trip_sent_before_it_began(store):
    first_version = snapshot(store, '{"status":"offline"}', at=T0)

    async def reads():
        sent, went_out = _counting_reads(store)
        early = asyncio.ensure_future(store.asnapshot_json(account_id=1))
        await asyncio.wait_for(went_out.wait(), timeout=5)
        # The early read is on its way; a change and a read after it.
        snapshot(store, '{"status":"online"}', at=T0 + 1)
        late = await store.asnapshot_json(account_id=1)
        return sent, await early, late

    sent, early, late = asyncio.run(reads())
    assert len(sent) == 2
    before, after = (
        f'{{"status":"{status}","version":{first_version + n}}}' for n, status in enumerate(["offline", "online"])
    )
    assert early in (before, after)  # sent before the change or just after: either is the store after it began
    assert late == after


@pytest.mark.production_only
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_a_reader_that_gives_up_leaves_the_shared_read_to_the_others(store):
    snapshot(store, '{"status":"online"}', at=T0)

    async def reads():
        _counting_reads(store)
        readers = [asyncio.ensure_future(store.asnapshot_json(account_id=1)) for _ in range(3)]
        await asyncio.sleep(0)  # all three joined the read
        readers[0].cancel()
        return await asyncio.gather(*readers, return_exceptions=True)

    gave_up, *answers = asyncio.run(reads())
    assert isinstance(gave_up, asyncio.CancelledError)
    assert answers == [store.snapshot_json(account_id=1)] * 2


@pytest.mark.production_only
def test_a_shared_async_snapshot_read_fails_for_every_reader_when_redis_is_unreachable():
    unreachable = RedisStore("redis://127.0.0.1:1/0", "nowhere")

    async def reads():
        return await asyncio.gather(
            *(unreachable.asnapshot_json(account_id=1) for _ in range(5)), return_exceptions=True
        )

    failures = asyncio.run(reads())
    assert all(isinstance(failure, StoreUnavailable) for failure in failures)


def test_due_accounts_are_those_whose_schedule_flips_by_now(store):
    snapshot(store, '{"a":1}', at=T0, account_id=1, due_at=T0 + 60)
    snapshot(store, '{"a":2}', at=T0, account_id=2, due_at=T0 + 30)
    snapshot(store, '{"a":3}', at=T0, account_id=3, due_at=None)
    assert store.due_accounts(now=T0 + 29.999, limit=10) == []
    assert store.due_accounts(now=T0 + 30, limit=10) == [2]
    assert sorted(store.due_accounts(now=T0 + 60, limit=10)) == [1, 2]
    assert len(store.due_accounts(now=T0 + 60, limit=1)) == 1


def test_storing_an_unchanged_snapshot_still_moves_its_deadline(store):
    snapshot(store, '{"a":1}', at=T0, due_at=T0 + 60)
    assert snapshot(store, '{"a":1}', at=T0 + 60, due_at=T0 + 3600) is None
    assert store.due_accounts(now=T0 + 60, limit=10) == []
    snapshot(store, '{"a":1}', at=T0 + 61, due_at=None)
    assert store.due_accounts(now=T0 + 10_000, limit=10) == []


def test_dropping_an_account_forgets_its_snapshot_deadline_and_presence(store):
    snapshot(store, '{"a":1}', at=T0, due_at=T0 + 60)
    snapshot(store, '{"b":1}', at=T0, account_id=2, due_at=T0 + 60)
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, CAROL, "c3", at=T0)
    store.account_drop(account_id=1)
    # It should forget account 1 whole, and keep account 2 as it was.
    assert store.snapshot_json(account_id=1) is None
    assert store.due_accounts(now=T0 + 60, limit=10) == [2]
    assert store.present_until_maps(account_ids=[1, 2]) == {1: {}, 2: {CAROL.operator_id: T0 + GRACE}}
    assert store.connections(ref=ALICE, now=T0, ttl=TTL) == []
    assert store.claim_expired(now=T0 + GRACE + 1, limit=10) == [CAROL]


def test_present_until_maps_answers_every_account_asked_for(store):
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, BOB, "c2", at=T0 + 1)
    heartbeat(store, CAROL, "c3", at=T0 + 2)
    maps = store.present_until_maps(account_ids=[1, 2, 3])
    assert maps == {
        1: {ALICE.operator_id: T0 + GRACE, BOB.operator_id: T0 + 1 + GRACE},
        2: {CAROL.operator_id: T0 + 2 + GRACE},
        3: {},
    }
    assert maps[1] == store.present_until_map(account_id=1)


def test_present_among_names_those_heard_from_after_now(store):
    heartbeat(store, ALICE, "c1", at=T0)
    heartbeat(store, CAROL, "c3", at=T0 + 10)
    store.claim_expired(now=T0 + GRACE, limit=10)  # ALICE's presence ran out and was claimed
    heartbeat(store, BOB, "c2", at=T0 + GRACE)
    unknown = OperatorRef(3, 30)
    assert store.present_among(refs=[ALICE, BOB, CAROL, unknown], now=T0 + GRACE + 1) == {BOB, CAROL}
    assert store.present_among(refs=[BOB, CAROL], now=T0 + GRACE + 10) == {BOB}
    assert store.present_among(refs=[], now=T0) == set()


def test_snapshots_stored_in_a_batch_behave_as_stored_one_by_one(store):
    first = snapshot(store, '{"a":1}', at=T0, account_id=1)
    writes = [
        SnapshotWrite(account_id=1, body='{"a":1}', due_at=T0 + 60),  # unchanged
        SnapshotWrite(account_id=2, body='{"b":1}', due_at=None),  # new
        SnapshotWrite(account_id=3, body='{"c":1}', due_at=T0 + 30),
    ]
    assert store.snapshot_store_many(writes=writes, now=T0 + 5) == [None, int((T0 + 5) * 1000), int((T0 + 5) * 1000)]
    changed = [SnapshotWrite(account_id=1, body='{"a":2}', due_at=None)]
    assert store.snapshot_store_many(writes=changed, now=T0 + 6) == [first + 1]
    assert store.snapshot_jsons(account_ids=[1, 2, 4]) == {
        1: f'{{"a":2,"version":{first + 1}}}',
        2: f'{{"b":1,"version":{int((T0 + 5) * 1000)}}}',
        4: None,
    }
    assert store.due_accounts(now=T0 + 60, limit=10) == [3]


def test_a_counter_counts_each_hit_per_key(store):
    assert [store.count("rl:x", now=T0, ttl=2) for _ in range(3)] == [1, 2, 3]
    assert store.count("rl:y", now=T0, ttl=2) == 1
    assert asyncio.run(store.acount("rl:x", now=T0, ttl=2)) == 4


# --- locks ------------------------------------------------------------------------------


def test_a_held_lock_excludes_others_until_released(store):
    with store.lock("refresh:1", timeout=5) as first:
        assert first is True
        with store.lock("refresh:1", timeout=5, blocking=False) as second:
            assert second is False
        with store.lock("refresh:2", timeout=5, blocking=False) as other_name:
            assert other_name is True
    with store.lock("refresh:1", timeout=5, blocking=False) as after_release:
        assert after_release is True


def test_locks_takes_the_free_ones_and_excludes_single_locks(store):
    with store.lock("refresh:2", timeout=5):
        with store.locks(["refresh:1", "refresh:2", "refresh:3"], timeout=5) as held:
            assert held == {"refresh:1", "refresh:3"}
            with store.lock("refresh:1", timeout=5, blocking=False) as single:
                assert single is False
            with store.locks(["refresh:3", "refresh:4"], timeout=5) as again:
                assert again == {"refresh:4"}
    with store.locks(["refresh:1", "refresh:2", "refresh:3"], timeout=5) as after_release:
        assert after_release == {"refresh:1", "refresh:2", "refresh:3"}


def test_forgotten_locks_are_free_at_once_and_others_stay_held(store):
    # Holders whose releases were lost (a failover): nobody will release these.
    orphans = [store.lock("refresh:1", timeout=30), store.locks(["refresh:2"], timeout=30)]
    sweep = store.lock("sweep", timeout=30)
    assert [orphans[0].__enter__(), orphans[1].__enter__(), sweep.__enter__()] == [True, {"refresh:2"}, True]

    assert store.locks_forget(prefix="refresh:") == 2

    with store.locks(["refresh:1", "refresh:2"], timeout=5) as held:
        assert held == {"refresh:1", "refresh:2"}
    with store.lock("sweep", timeout=5, blocking=False) as taken:
        assert taken is False
    assert store.locks_forget(prefix="refresh:") == 0
    for holder in [*orphans, sweep]:
        holder.__exit__(None, None, None)  # a late release frees only what is still its own
    with store.lock("sweep", timeout=5, blocking=False) as taken:
        assert taken is True


def test_locks_released_late_do_not_free_a_new_holder(store):
    batch = store.locks(["refresh:1"], timeout=0.2)
    assert batch.__enter__() == {"refresh:1"}
    with store.lock("refresh:1", timeout=3) as newer:  # waits for the batch's lock to time out
        assert newer is True
        batch.__exit__(None, None, None)  # the batch finishes late
        with store.lock("refresh:1", timeout=5, blocking=False) as third:
            assert third is False


def test_a_blocking_lock_gives_up_after_its_timeout(store):
    with store.lock("sweep", timeout=5), store.lock("sweep", timeout=0.2) as waited:
        assert waited is False


def test_a_blocking_lock_waits_for_the_holder(store):
    inside = threading.Event()
    release = threading.Event()
    order = []

    def holder():
        with store.lock("refresh:1", timeout=5):
            order.append("holder in")
            inside.set()
            release.wait(timeout=5)
            order.append("holder out")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(timeout=5)
    release.set()
    with store.lock("refresh:1", timeout=5) as acquired:
        order.append("waiter in")
    thread.join(timeout=5)
    assert acquired is True
    assert order == ["holder in", "holder out", "waiter in"]


def test_a_lock_whose_holder_vanished_expires(store):
    abandoned = store.lock("sweep", timeout=0.3)
    assert abandoned.__enter__() is True  # never exited: its holder crashed
    with store.lock("sweep", timeout=3) as acquired:
        assert acquired is True


def test_only_one_of_many_threads_holds_a_lock_at_a_time(store):
    barrier = threading.Barrier(6)
    counter = [0]

    def worker():
        barrier.wait()
        for _ in range(5):
            with store.lock("refresh:9", timeout=5) as acquired:
                assert acquired
                # A read-modify-write with a gap: without exclusion updates get lost.
                value = counter[0]
                time.sleep(0.002)
                counter[0] = value + 1

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert counter[0] == 30


@pytest.mark.production_only
def test_an_unreachable_redis_raises_store_unavailable():
    unreachable = RedisStore("redis://127.0.0.1:1/0", "nowhere")
    with pytest.raises(StoreUnavailable):
        heartbeat(unreachable, ALICE, "c1", at=T0)
    with pytest.raises(StoreUnavailable):
        unreachable.present_until_map(account_id=1)
