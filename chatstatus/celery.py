"""Celery app: one beat schedules the periodic presence work, workers run it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")

app = Celery("chatstatus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
