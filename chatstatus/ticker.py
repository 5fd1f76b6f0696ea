"""Embedded mode's stand-in for Celery beat + worker.

Runs the same services as the Celery tasks, on the server's own event loop
(the in-memory channel layer must be used from that loop), started on the
first request or connection the server receives.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from presence import services

logger = logging.getLogger(__name__)


async def _run_forever() -> None:
    period = min(5, settings.PRESENCE_SWEEP_SECONDS)
    elapsed = 0
    while True:
        await asyncio.sleep(period)
        elapsed += period
        try:
            await sync_to_async(services.chat_box_refresh_due)()
            if elapsed >= settings.PRESENCE_SWEEP_SECONDS:
                elapsed = 0
                await sync_to_async(services.presence_sweep)()
        except Exception:
            logger.exception("embedded ticker run failed")


def with_ticker(application):
    task: asyncio.Task | None = None

    async def app(scope, receive, send):
        nonlocal task
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(_run_forever())
        return await application(scope, receive, send)

    return app
