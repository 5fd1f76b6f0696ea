"""Periodic work: the Celery beat schedule and tasks (production) and the
in-process ticker (embedded mode) run the same services."""

import asyncio
import datetime
import threading

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import Operator, Status
from chatstatus import ticker
from chatstatus.celery import app as celery_app
from presence import services, tasks
from presence.models import Source, StatusEvent
from tests.factories import make_account, make_operator
from tests.presence.conftest import committed_db

GRACE = 120


def test_beat_schedules_the_sweep_and_the_boundaries_from_the_settings(settings):
    celery_app.finalize()
    schedule = celery_app.conf.beat_schedule
    sweep = settings.PRESENCE_SWEEP_SECONDS
    assert schedule["presence sweep"]["task"] == "presence.tasks.presence_sweep"
    assert schedule["presence sweep"]["schedule"] == sweep
    assert schedule["opening-hours boundaries"]["task"] == "presence.tasks.chat_box_boundaries"
    assert schedule["opening-hours boundaries"]["schedule"] == min(5, sweep)
    # A worker that was down does not replay a backlog of runs.
    assert schedule["presence sweep"]["options"]["expires"] == sweep


@pytest.fixture
def expired_operator():
    """An online operator whose last device closed more than a grace period ago."""
    with time_machine.travel(timezone.now(), tick=False) as clock:
        operator = make_operator(account=make_account(stale_after_seconds=GRACE), status=Status.ONLINE)
        services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1")
        services.presence_disconnect(operator=operator, conn_id="c1")
        clock.shift(GRACE + 1)
        yield operator


def was_swept(operator: Operator) -> bool:
    return StatusEvent.objects.filter(operator=operator, source=Source.STALE_SWEEP).exists()


@committed_db
def test_the_sweep_task_runs_the_sweep(expired_operator):
    assert tasks.presence_sweep.delay().get() == 1
    assert was_swept(expired_operator)


@committed_db
def test_the_boundaries_task_runs_the_due_refresh(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "chat_box_refresh_due", lambda: calls.append(1) or 3)
    assert tasks.chat_box_boundaries.delay().get() == 3
    assert calls == [1]


# --- the embedded ticker --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sweep_seconds", "period", "ticks_per_sweep"),
    [(15, 5, 3), (7, 3.5, 2), (5, 5, 1), (1, 1, 1), (600, 5, 120), (11, 11 / 3, 3)],
)
def test_the_ticker_checks_boundaries_at_least_every_5_s_and_sweeps_on_time(sweep_seconds, period, ticks_per_sweep):
    assert ticker.ticker_plan(sweep_seconds) == (pytest.approx(period), ticks_per_sweep)
    assert period <= 5
    assert period * ticks_per_sweep == pytest.approx(sweep_seconds)


@committed_db
async def test_a_tick_sweeps_only_on_its_turn(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "chat_box_refresh_due", lambda: calls.append("boundaries"))
    monkeypatch.setattr(services, "presence_sweep", lambda: calls.append("sweep"))
    await ticker.ticker_tick(sweep=False)
    await ticker.ticker_tick(sweep=True)
    assert calls == ["boundaries", "boundaries", "sweep"]


@committed_db
async def test_a_failing_boundary_run_does_not_stop_the_sweep(monkeypatch, caplog):
    swept = []

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "chat_box_refresh_due", broken)
    monkeypatch.setattr(services, "presence_sweep", lambda: swept.append(1))
    await ticker.ticker_tick(sweep=True)
    assert swept == [1]
    assert "opening-hours boundaries failed" in caplog.text


@committed_db
async def test_the_running_ticker_sweeps_an_expired_operator(settings, monkeypatch):
    settings.PRESENCE_SWEEP_SECONDS = 1
    sweep = services.presence_sweep
    done = threading.Event()

    def sweep_and_tell():
        result = sweep()
        if result:
            done.set()
        return result

    monkeypatch.setattr(services, "presence_sweep", sweep_and_tell)
    operator = await database_sync_to_async(_expired_operator_now)()
    task = asyncio.get_running_loop().create_task(ticker._run_forever())
    try:
        assert await asyncio.to_thread(done.wait, 5)
    finally:
        task.cancel()
    assert await database_sync_to_async(was_swept)(operator)


def _expired_operator_now() -> Operator:
    """An online operator last heard from long ago (no time travel: the ticker
    runs on the real clock)."""
    operator = make_operator(account=make_account(stale_after_seconds=GRACE), status=Status.ONLINE)
    long_ago = timezone.now() - datetime.timedelta(seconds=GRACE + 5)
    services.presence_heartbeat(operator=operator, conn_id="c1", device="t:1", now=long_ago)
    return operator


async def test_with_ticker_starts_one_ticker_for_many_requests(monkeypatch):
    started = []

    async def fake_ticker():
        started.append(1)
        await asyncio.Event().wait()

    async def application(scope, receive, send):
        return scope["n"]

    monkeypatch.setattr(ticker, "_run_forever", fake_ticker)
    app = ticker.with_ticker(application)
    assert [await app({"n": n}, None, None) for n in range(5)] == [0, 1, 2, 3, 4]
    await asyncio.sleep(0)  # let the ticker task start
    assert started == [1]


async def test_with_ticker_restarts_a_ticker_that_died(monkeypatch):
    runs = []

    async def short_lived():
        runs.append(1)

    async def application(scope, receive, send):
        return None

    monkeypatch.setattr(ticker, "_run_forever", short_lived)
    app = ticker.with_ticker(application)
    await app({}, None, None)
    await asyncio.sleep(0)
    await app({}, None, None)
    await asyncio.sleep(0)
    assert runs == [1, 1]
