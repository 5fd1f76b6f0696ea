"""Admission to Django: a bounded number of requests at a time per process, a short queue, then 503.

Each request Django serves runs in a thread of its own and holds a database
connection from the process's pool. Without a bound, a burst beyond what the
process can do piles up threads that wait for the pool: after its 10 s wait
each gets a 500, clients give up, Daphne cancels what they left, and the
process spends its CPU on answers nobody reads (the conversations benchmark
at 100 messages a second each way answered 0 of 6,000 that way).

This ASGI layer, just in front of Django, lets ``REQUEST_CONCURRENCY``
requests in at a time; the others wait in order, on the event loop (no
thread, no connection), up to ``REQUEST_QUEUE_SECONDS``. A request that still
has no turn gets ``503`` with ``Retry-After``: the widget keeps an unsent
message in its outbox and sends it again with its ``client_id``, an app
retries, and what the process does serve it serves in time. A request whose
client leaves while it waits is dropped without ever reaching Django.

What is answered in front of Django (the widget status read, the probes,
``/metrics``) and WebSockets do not count: they take no thread and no
connection from this budget. Nor do an app's REST heartbeats: one per device
every 25 s, small, and what keeps its operator's status true; a heartbeat
refused through an overload that outlasts the connection TTL would switch a
present operator offline.
"""

import asyncio
import json
import weakref
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.core import checks

from chatstatus.edgemetrics import REST_HEARTBEAT_PATH
from chatstatus.metrics import HTTP_SHED

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

RETRY_AFTER_SECONDS = 2
OVERLOADED_JSON = json.dumps({"error": "overloaded", "retry_after": RETRY_AFTER_SECONDS}).encode()
# A person at the dashboard or the admin reads this one.
OVERLOADED_TEXT = b"The server is too busy right now. Please try again in a moment.\n"
_MACHINE_PATHS = ("/api/", "/widget/")


async def _overloaded(scope: dict, send: Callable) -> None:
    path = scope["path"]
    body, kind = (OVERLOADED_JSON, b"application/json")
    if not path.startswith(_MACHINE_PATHS):
        body, kind = (OVERLOADED_TEXT, b"text/plain; charset=utf-8")
    headers = [
        (b"content-type", kind),
        (b"cache-control", b"no-store"),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if path.startswith("/widget/"):
        # The widget reads the answer cross-origin: without this it sees a network error.
        headers += [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"Retry-After")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def with_admission(app: ASGIApp) -> ASGIApp:
    """``app`` (Django) entered by at most ``REQUEST_CONCURRENCY`` HTTP requests at a time."""
    # One budget per event loop (a process has one; tests run several in turn).
    slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    async def admitted(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] == REST_HEARTBEAT_PATH:
            await app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        slot = slots.get(loop)
        if slot is None:
            slot = slots[loop] = asyncio.Semaphore(settings.REQUEST_CONCURRENCY)
        if slot.locked():  # every slot busy, or others already in line: wait in line
            try:
                async with asyncio.timeout(settings.REQUEST_QUEUE_SECONDS):
                    await slot.acquire()
            except TimeoutError:
                HTTP_SHED.inc()
                await _overloaded(scope, send)
                return
        else:
            await slot.acquire()
        try:
            await app(scope, receive, send)
        finally:
            slot.release()

    return admitted


@checks.register()
def concurrency_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if not isinstance(pool, dict) or settings.REQUEST_CONCURRENCY < pool.get("max_size", 0):
        return []
    return [
        checks.Warning(
            f"REQUEST_CONCURRENCY ({settings.REQUEST_CONCURRENCY}) is not below DATABASE_POOL_SIZE "
            f"({pool['max_size']}): the sockets' database work and the requests wait for each other's connections",
            hint="Keep REQUEST_CONCURRENCY a few below DATABASE_POOL_SIZE (docs/OPERATIONS.md).",
            id="chatstatus.W004",
        )
    ]
