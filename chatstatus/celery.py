"""Celery app: one beat schedules the periodic presence work, workers run it.

Also here: the sweep's metrics (around the task, from Celery's signals), the
metrics endpoint of a worker or beat (``METRICS_LISTEN``), and, under Redis
Sentinel, the beat's watch for failovers (``chatstatus.failover``).
"""

import os
import time

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")

app = Celery("chatstatus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

SWEEP_TASK = "presence.tasks.presence_sweep"
_sweeps_started: dict[str, float] = {}


@app.on_after_finalize.connect
def _schedule(sender: Celery, **kwargs: object) -> None:
    from django.conf import settings

    sweep = settings.PRESENCE_SWEEP_SECONDS
    boundaries = min(5, sweep)
    # ``expires``: a worker that was down does not replay a backlog of sweeps;
    # each run looks at the current time anyway.
    sender.add_periodic_task(
        sweep, sender.signature("presence.tasks.presence_sweep", expires=sweep), name="presence sweep"
    )
    sender.add_periodic_task(
        boundaries,
        sender.signature("presence.tasks.chat_box_boundaries", expires=boundaries),
        name="opening-hours boundaries",
    )
    # Automatic-message timers (±2 s): every second; claims make a beat twice harmless.
    timers = settings.CONVERSATION_TIMERS_SECONDS
    sender.add_periodic_task(
        timers, sender.signature("conversations.tasks.timers_fire", expires=timers), name="conversation timers"
    )


@task_prerun.connect
def _sweep_started(task_id: str | None = None, task: object = None, **kwargs: object) -> None:
    if getattr(task, "name", None) == SWEEP_TASK and task_id:
        _sweeps_started[task_id] = time.monotonic()


@task_postrun.connect
def _sweep_finished(
    task_id: str | None = None, retval: object = None, state: str | None = None, **kwargs: object
) -> None:
    started = _sweeps_started.pop(task_id, None) if task_id else None
    if started is None:
        return
    from chatstatus.metrics import OPERATORS_SWEPT, SWEEP_FAILURES, SWEEP_SECONDS

    SWEEP_SECONDS.observe(time.monotonic() - started)
    if state == "SUCCESS" and isinstance(retval, int):
        OPERATORS_SWEPT.inc(retval)
    elif state == "FAILURE":
        SWEEP_FAILURES.inc()


def _serve_metrics() -> None:
    from django.conf import settings

    if settings.METRICS_LISTEN is not None:
        from chatstatus.health import serve_metrics

        host, port = settings.METRICS_LISTEN
        serve_metrics(host=host, port=port)


@worker_init.connect
def _worker_started(**kwargs: object) -> None:
    _serve_metrics()


@beat_init.connect
def _beat_started(**kwargs: object) -> None:
    from django.conf import settings

    _serve_metrics()
    if settings.REDIS_SENTINELS:
        from django.utils import timezone

        from chatstatus.failover import FailoverWatch
        from presence.services import presence_after_failover

        def resync(_new_master: str) -> None:
            presence_after_failover(now=timezone.now())

        FailoverWatch(
            sentinels=settings.REDIS_SENTINELS, master=settings.REDIS_SENTINEL_MASTER, on_switch=resync
        ).start()
