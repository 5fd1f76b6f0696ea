"""``chat_box_read``: the one read of the chat box every reader shows. It answers
the stored snapshot, recomputed first when it is missing or past a schedule
flip; with the store unreachable it still answers, computed. The selectors it
builds on never write."""

import copy
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from redis.backoff import NoBackoff

from accounts.models import Account, Operator, Status
from presence import selectors
from presence import store as store_module
from presence.rules import presence_hold
from presence.services import achat_box_read, chat_box_read, chatbox
from presence.store import MemoryStore, OperatorRef, RedisStore, StoreUnavailable
from tests.factories import make_account, make_operator
from tests.presence.conftest import Socket, committed_db, session_headers
from tests.widget.helpers import make_open_monday_nine_to_five_with_someone_online

db = database_sync_to_async

# A Monday still to come: Redis expires keys by its own clock, so a test never travels to the past.
MONDAY = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday() + 7)


def monday_at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(MONDAY, time(hour, minute, second), tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


MONDAY_BEFORE_NINE = monday_at(8, 59)
MONDAY_AFTER_NINE = monday_at(9, 0, 30)
MONDAY_BEFORE_FIVE = monday_at(16, 59, 30)
MONDAY_AFTER_FIVE = monday_at(17, 0, 30)


def present_without_a_snapshot(operator: Operator, store) -> None:
    """A live connection on record, as a heartbeat leaves it, but no snapshot
    made from it (say the store restarted and only the heartbeat came back)."""
    moment = datetime.now(UTC).timestamp()
    hold = presence_hold(ttl=settings.PRESENCE_CONNECTION_TTL_SECONDS, grace=operator.account.stale_after_seconds)
    store.touch(
        ref=OperatorRef(operator.account_id, operator.id),
        conn_id="tab",
        device="s:tab",
        now=moment,
        present_until=moment + hold,
    )


def stored(account: Account) -> dict | None:
    return selectors.chat_box_snapshot(account_id=account.id)


@pytest.fixture
def unreachable_store(monkeypatch):
    """The presence store as seen when Redis is down: every call fails to connect
    (at once: its retries do not wait between attempts)."""
    monkeypatch.setattr(store_module, "ExponentialBackoff", lambda **kwargs: NoBackoff())
    down = RedisStore("redis://127.0.0.1:1/0", "unreachable")
    for module in (chatbox, selectors):
        monkeypatch.setattr(module, "get_store", lambda: down)
    yield down
    down.client.close()


# --- recomputing when missing or due ------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_snapshot_is_computed_and_stored(store):
    account = make_account()
    operator = make_operator(account=account, status=Status.ONLINE)
    present_without_a_snapshot(operator, store)
    assert stored(account) is None

    snapshot = chat_box_read(account_id=account.id)

    # It should compute the box from the facts (an online, present operator) and store what it answers.
    assert (snapshot["status"], snapshot["reason"]) == ("online", "operators_online")
    assert isinstance(snapshot["version"], int) and snapshot["version"] > 0
    assert stored(account) == snapshot


@pytest.mark.django_db
def test_a_current_snapshot_is_answered_as_stored_without_recomputing(monkeypatch):
    account = make_account()
    first = chat_box_read(account_id=account.id)
    recomputed = []
    monkeypatch.setattr(chatbox, "chat_box_refresh", lambda **kwargs: recomputed.append(kwargs))

    again = chat_box_read(account_id=account.id)

    # It should answer the stored snapshot: nothing changed, nothing is due.
    assert again == first
    assert recomputed == []


@pytest.mark.django_db
def test_a_snapshot_past_its_next_change_is_recomputed_before_it_is_answered():
    with time_machine.travel(MONDAY_BEFORE_NINE, tick=False) as traveller:
        account = make_open_monday_nine_to_five_with_someone_online()
        closed = chat_box_read(account_id=account.id)
        traveller.move_to(MONDAY_AFTER_NINE)  # no boundary run, no write in between

        opened = chat_box_read(account_id=account.id)

    # It should notice the announced flip has come and answer (and store) the box as it is now.
    assert (closed["status"], closed["reason"], closed["next_change_at"]) == (
        "offline",
        "closed",
        iso(monday_at(9, 0)),
    )
    assert (opened["status"], opened["reason"], opened["next_change_at"]) == (
        "online",
        "operators_online",
        iso(monday_at(17, 0)),
    )
    assert opened["version"] > closed["version"]
    assert stored(account) == opened


@pytest.mark.django_db
def test_a_snapshot_just_before_its_next_change_is_not_recomputed(monkeypatch):
    with time_machine.travel(MONDAY_BEFORE_NINE, tick=False) as traveller:
        account = make_open_monday_nine_to_five_with_someone_online()
        closed = chat_box_read(account_id=account.id)
        monkeypatch.setattr(chatbox, "chat_box_refresh", lambda **kwargs: pytest.fail("recomputed too early"))
        traveller.move_to(monday_at(8, 59, 59))

        # It should trust the snapshot until its announced flip.
        assert chat_box_read(account_id=account.id) == closed


# --- the operator socket's hello --------------------------------------------------------


@committed_db
async def test_the_hello_after_closing_time_says_closed_like_the_api():
    with time_machine.travel(MONDAY_BEFORE_FIVE, tick=False) as traveller:
        account = await db(make_open_monday_nine_to_five_with_someone_online)()
        operator = await db(lambda: account.operators.get(role=Operator.Role.AGENT))()
        headers = await db(session_headers)(operator)
        assert (await db(chat_box_read)(account_id=account.id))["status"] == "online"
        traveller.move_to(MONDAY_AFTER_FIVE)  # no boundary run: the stored snapshot still says open

        socket = Socket(headers)
        assert await socket.connect()
        hello = await socket.receive_until(lambda message: message["type"] == "hello")
        await socket.close()
        api = Client()
        await db(api.force_login)(operator)
        answer = await db(api.get)("/api/v1/chat-box")

    # It should greet with the box as it is now (closed), the very answer of GET /api/v1/chat-box.
    assert (hello["chat_box"]["status"], hello["chat_box"]["reason"]) == ("offline", "closed")
    assert answer.status_code == 200
    assert hello["chat_box"] == answer.json()


# --- an unreachable store -------------------------------------------------------------------


@pytest.mark.django_db
def test_with_the_store_unreachable_the_read_still_answers_computed(unreachable_store):
    with time_machine.travel(MONDAY_BEFORE_NINE, tick=False):
        with pytest.raises(StoreUnavailable):
            unreachable_store.snapshot_json(account_id=1)  # the store really is out of reach
        account = make_open_monday_nine_to_five_with_someone_online()

        snapshot = chat_box_read(account_id=account.id)

    # It should answer from the facts it has (the schedule), unversioned, instead of failing.
    assert snapshot == {
        "status": "offline",
        "reason": "closed",
        "next_change_at": iso(monday_at(9, 0)),
        "groups": {},
        "version": 0,
    }


@committed_db
async def test_with_the_store_unreachable_the_async_read_still_answers_computed(unreachable_store):
    account = await db(make_account)()

    snapshot = await achat_box_read(account_id=account.id)

    # It should fall back to the computed box like the sync read.
    assert (snapshot["status"], snapshot["reason"], snapshot["version"]) == ("offline", "no_operator_online", 0)


# --- selectors never write ----------------------------------------------------------------------


def contents(store) -> object:
    """Everything the store holds, to compare before and after."""
    if isinstance(store, RedisStore):
        return {key: store.client.dump(key) for key in store.client.scan_iter(match=f"{store.prefix}:*")}
    assert isinstance(store, MemoryStore)
    with store._lock:
        return copy.deepcopy((store._conns, store._until, store._snap, store._due, store._leases))


@pytest.mark.django_db
def test_the_selectors_never_write_a_missing_snapshot(store):
    with time_machine.travel(MONDAY_BEFORE_NINE, tick=False):
        account = make_open_monday_nine_to_five_with_someone_online()
        store.reset()  # the snapshot the setup made is gone; the presence with it
        operator = account.operators.get(role=Operator.Role.AGENT)
        present_without_a_snapshot(operator, store)
        before = contents(store)
        now = datetime.now(UTC)

        found = (
            selectors.chat_box_snapshot(account_id=account.id),
            selectors.chat_box_snapshots(account_ids=[account.id]),
            selectors.chat_box_states(account_ids=[account.id], now=now)[account.id].reason,
            selectors.presence_map(account_id=account.id).keys(),
            selectors.operators_present(account_id=account.id),
            selectors.operator_connections(operator=operator),
        )

    # It should read and compute, and leave the store exactly as it was: no snapshot, no deadline.
    assert found[:3] == (None, {account.id: None}, "closed")
    assert set(found[3]) == found[4] == {operator.id}
    assert len(found[5]) == 1
    assert contents(store) == before
    assert store.snapshot_json(account_id=account.id) is None
    assert store.due_accounts(now=now.timestamp() + 10**9, limit=10) == []
