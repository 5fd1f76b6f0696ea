"""Embedded mode's stand-in for Celery beat + worker.

Runs the same services as the Celery tasks, on the server's own event loop
(the in-memory channel layer must be used from that loop), started on the
first request or connection the server receives.
"""

import asyncio
import logging
import math

from asgiref.sync import sync_to_async
from django.conf import settings

from conversations.services import timers_fire
from presence import services

logger = logging.getLogger(__name__)

# Opening-hours boundaries are checked at least this often, like beat does.
BOUNDARY_SECONDS = 5


def ticker_plan(sweep_seconds: int) -> tuple[float, int]:
    """(seconds between ticks, ticks per sweep): ticks at most BOUNDARY_SECONDS
    apart that divide the sweep period exactly, so a sweep is never later than
    its period (15 s → every 5 s, sweep every 3rd tick; 7 s → every 3.5 s, every 2nd)."""
    ticks = max(1, math.ceil(sweep_seconds / BOUNDARY_SECONDS))
    return sweep_seconds / ticks, ticks


async def ticker_tick(*, sweep: bool) -> None:
    """One run: the boundary check, and the sweep when it is its turn. One
    failing does not stop the other, nor the ticker."""
    try:
        await sync_to_async(services.chat_box_refresh_due)()
    except Exception:
        logger.exception("embedded ticker: opening-hours boundaries failed")
    if sweep:
        try:
            await sync_to_async(services.presence_sweep)()
        except Exception:
            logger.exception("embedded ticker: presence sweep failed")


async def _run_forever() -> None:
    period, ticks_per_sweep = ticker_plan(settings.PRESENCE_SWEEP_SECONDS)
    tick = 0
    while True:
        await asyncio.sleep(period)
        tick += 1
        await ticker_tick(sweep=tick % ticks_per_sweep == 0)


async def timers_tick() -> None:
    try:
        await sync_to_async(timers_fire)()
    except Exception:
        logger.exception("embedded ticker: conversation timers failed")


async def _timers_forever() -> None:
    while True:
        await asyncio.sleep(settings.CONVERSATION_TIMERS_SECONDS)
        await timers_tick()


def with_ticker(application):
    tasks: list[asyncio.Task] = []

    async def app(scope, receive, send):
        loop = asyncio.get_running_loop()
        if not tasks or any(task.done() for task in tasks) or tasks[0].get_loop() is not loop:
            for task in tasks:
                task.cancel()
            tasks[:] = [loop.create_task(_run_forever()), loop.create_task(_timers_forever())]
        return await application(scope, receive, send)

    return app
