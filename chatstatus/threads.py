"""Django's sync code on a few long-lived threads instead of one new thread per request.

Django's ASGI handler runs each request's sync code (middleware, views, the
ORM) in a ``ThreadSensitiveContext`` of its own, and asgiref gives such a
context a thread of its own: started for the request, then joined by one more
thread when it ends. Measured on a visitor's message, starting and joining
those threads (and opening the new thread's database connection wrapper) was
about a quarter of the web process's CPU per request.

asgiref (3.10 and later) lets the caller hand a ``ThreadSensitiveContext`` an
executor it owns and keeps; Django's own context inside it then uses that
executor. Each request here is given the least busy of a few single-thread
executors that live as long as the process: the same isolation per request
(one thread runs all of a request's sync code), without a thread per request.
Two requests given the same executor run their sync parts one after the other,
as every request did before Django gave each its own thread.

Without that asgiref feature this steps aside (``pooled_threads_supported``)
and Django works as it does by itself.
"""

import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

# Sync code holds the GIL while it computes, so more threads than this only
# overlap more database and store round trips; a request beyond that waits
# for the least busy thread.
THREADS = 8


def pooled_threads_supported() -> bool:
    return "executor" in inspect.signature(ThreadSensitiveContext.__init__).parameters


class ThreadPool:
    """Single-thread executors and how many requests each is running (used
    from the event loop's thread only)."""

    def __init__(self, size: int) -> None:
        self.executors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"django-sync-{n}") for n in range(size)]
        self.busy = [0] * size

    def take(self) -> int:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        return index

    def give_back(self, index: int) -> None:
        self.busy[index] -= 1


def with_pooled_threads(app: ASGIApp, *, size: int = THREADS) -> ASGIApp:
    """Wrap Django's HTTP application (see the module's docstring)."""
    if not pooled_threads_supported():
        return app
    pool = ThreadPool(size)

    async def application(scope: dict, receive: Callable, send: Callable) -> None:
        index = pool.take()
        try:
            async with ThreadSensitiveContext(executor=pool.executors[index]):
                await app(scope, receive, send)
        finally:
            pool.give_back(index)

    application.pool = pool  # type: ignore[attr-defined] (for the tests)
    return application
