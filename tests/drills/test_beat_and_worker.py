"""Celery beat and worker misbehave the way real deployments do: two beats run
at once, or the worker is down while beat keeps scheduling. Neither doubles
an operator's status change nor replays a backlog of sweeps."""

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Status
from presence import services
from presence.models import Source, StatusEvent
from tests.drills.conftest import (
    GRACE_SECONDS,
    SWEEP_DISCARDED,
    SWEEP_RAN,
    SWEEP_SENT,
    SWEEP_SUCCEEDED,
    LogWatch,
    is_hello,
    is_operator_status,
    is_widget_status,
    ready,
    report,
    wait_until,
)
from tests.factories import make_account, make_operator, make_token, owner_of

# Real processes and a Redis of the drill's own: not part of the embedded-mode pass.
pytestmark = pytest.mark.production_only

SWEEP_TASK = "presence.tasks.presence_sweep"


def last_heard(operator, *, seconds_ago: float) -> float:
    """The operator's only device sent its last heartbeat ``seconds_ago`` and
    went silent; returns when the operator's presence runs out."""
    heard = timezone.now() - timedelta(seconds=seconds_ago)
    services.presence_heartbeat(operator=operator, conn_id="silent-phone", device="t:silent", now=heard)
    return heard.timestamp() + GRACE_SECONDS


def queued_sweeps(drill) -> dict[str, str | None]:
    """The sweep tasks waiting in the broker's queue: id → ``expires`` header."""
    # Celery's queue, under the installation's key prefix (kombu's global_keyprefix).
    queue = f"{settings.REDIS_PREFIX}:celery"
    headers = [json.loads(item)["headers"] for item in drill.redis.client().lrange(queue, 0, -1)]
    return {header["id"]: header.get("expires") for header in headers if header["task"] == SWEEP_TASK}


def test_two_beats_at_once_switch_a_stale_operator_offline_once_and_push_it_once(drill, sockets):
    cluster = drill.start(beats=2)
    web, worker = cluster.web, cluster.worker
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    stale = make_operator(account=account, status=Status.ONLINE)
    dashboard = sockets.operator(web, make_token(owner_of(account)))
    dashboard.wait_for(is_hello, timeout=15, what="the dashboard's hello")
    widget = sockets.widget(web, account.widget_key)
    widget.wait_for(is_widget_status("offline"), timeout=15, what="the widget's first status")
    expires_at = last_heard(stale, seconds_ago=GRACE_SECONDS - 8)
    widget.wait_for(is_widget_status("online"), timeout=8, what="the widget showing the operator online")

    dashboard.wait_for(
        is_operator_status(stale.id, "offline", Source.STALE_SWEEP),
        timeout=GRACE_SECONDS,
        what="the dashboard seeing the stale operator swept",
    )
    swept_at = time.time()
    widget.wait_for(is_widget_status("offline"), timeout=10, what="the widget seeing the chat box close")
    # Let both beats go on for a few more sweeps: a duplicate would show by then.
    worker_log, beat_logs = LogWatch(worker), [LogWatch(beat) for beat in cluster.beats]
    for log in beat_logs:
        log.wait_for(SWEEP_SENT, count=3, timeout=30, what="each beat sending more sweeps")
    worker_log.wait_for(SWEEP_SUCCEEDED, count=5, timeout=30, what="the worker running more sweeps")

    assert StatusEvent.objects.filter(operator=stale).count() == 1
    pushes = [m for m in widget.drain() if m.get("type") == "status"]
    assert pushes == [], f"the widget was pushed again: {pushes}"
    repeats = [m for m in dashboard.drain() if is_operator_status(stale.id, "offline")(m)]
    assert repeats == [], f"the dashboard was told again: {repeats}"
    report("two beats", expired_to_swept=swept_at - expires_at)


def test_a_worker_back_after_an_outage_discards_the_queued_sweeps_instead_of_replaying_them(drill):
    cluster = drill.start(webs=())
    account = make_account(stale_after_seconds=GRACE_SECONDS)
    stale = make_operator(account=account, status=Status.ONLINE)

    cluster.worker.stop()
    # The operator's presence runs out while the worker is down.
    last_heard(stale, seconds_ago=GRACE_SECONDS - 3)
    LogWatch(cluster.beat).wait_for(SWEEP_SENT, count=10, timeout=60, what="beat queueing ten sweeps with no worker")
    queued = queued_sweeps(drill)
    assert len(queued) >= 10
    assert all(queued.values()), "a sweep was queued without an expiry"
    assert StatusEvent.objects.filter(operator=stale).count() == 0

    returned = ready(drill.celery("worker", "worker-back"))
    wait_until(
        lambda: all(task_id in returned.log() for task_id in queued),
        timeout=60,
        what="the returned worker handling every queued sweep",
    )
    log = returned.log()
    discarded = {match["id"] for match in SWEEP_DISCARDED.finditer(log)} & set(queued)
    replayed = {match["id"] for match in SWEEP_RAN.finditer(log)} & set(queued)
    assert len(replayed) <= 1, f"{len(replayed)} of {len(queued)} queued sweeps were replayed"
    assert len(discarded) >= len(queued) - 1
    # The one sweep that matters is a fresh one: the operator is swept once.
    wait_until(
        lambda: StatusEvent.objects.filter(operator=stale, source=Source.STALE_SWEEP).exists(),
        timeout=30,
        what="the stale operator swept once the worker is back",
    )
    LogWatch(returned).wait_for(SWEEP_SUCCEEDED, count=3, timeout=30, what="a few more sweeps")
    assert StatusEvent.objects.filter(operator=stale).count() == 1
    report("worker down", queued_sweeps=len(queued), discarded_expired=len(discarded), replayed=len(replayed))
