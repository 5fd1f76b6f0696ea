"""PostgreSQL from the event loop: psycopg's asyncio pool, one per loop.

The two messages of a chat (a visitor's, an operator's reply) are the writes
that come by the hundred a second. Served through Django's request, each
takes a thread and the ORM builds its SQL every time; written from the event
loop here, it takes neither (docs/PERFORMANCE.md has the figures). Everything
else uses Django's connections.

Only with PostgreSQL and psycopg's pool; ``available()`` says so, and callers
fall back to Django's path without it (the embedded mode's SQLite).
The pool connects with the settings of Django's ``default`` connection as they
are when it is first used (a test database included), prepares a statement
run ``prepare_threshold`` times as Django's connections do, and keeps at most
``DATABASE_ASYNC_POOL_SIZE`` connections per web process beside Django's
pool (a message's transaction is two statements without a wait between
them: a few connections serve hundreds a second, and writes beyond them wait
their turn).
"""

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections

from chatstatus.metrics import DbQueryMeasured

# A write that cannot get a connection this fast is handed to Django's path
# (which queues it or answers 503).
ASYNC_POOL_TIMEOUT = 5.0

# By loop; a closed loop's entry stays until ``close_abandoned`` closes its connections.
_pools: dict = {}

try:
    from psycopg import AsyncCursor, OperationalError
    from psycopg_pool import PoolClosed, PoolTimeout

    # The database out of reach: no connection in time, or one that broke.
    Unavailable: tuple[type[Exception], ...] = (OperationalError, PoolTimeout, PoolClosed)
except ImportError:  # no psycopg pool: available() is False and nothing here runs
    Unavailable = ()
    AsyncCursor = object


class MeasuredAsyncCursor(AsyncCursor):
    """psycopg's asyncio cursor, each statement counted and timed in
    ``chatstatus_db_*`` as ``chatstatus.dbmetrics`` does Django's."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        with DbQueryMeasured("postgresql"):
            return await super().execute(query, params, **kwargs)


def available() -> bool:
    if connections["default"].vendor != "postgresql":
        return False
    return bool(Unavailable)


def _connect_kwargs() -> dict:
    params = dict(connections["default"].get_connection_params())
    # Django's own: the cursor class it binds with, and nothing a plain connection takes.
    params.pop("cursor_factory", None)
    # Prepared as Django's connections are (DATABASE_PREPARED_STATEMENTS), or never.
    params.setdefault("prepare_threshold", None)
    # Each write opens its own transaction block (``conn.transaction()``).
    params["autocommit"] = True
    return params


@dataclass
class _Entry:
    pool: object
    # Every connection the pool opened (``configure``), to close them when
    # the loop died without closing the pool (below).
    connections: weakref.WeakSet = field(default_factory=weakref.WeakSet)


def close_abandoned() -> None:
    """Close the connections of pools whose loop was closed without closing them.

    A web process has one loop for its whole life; a test client or a tool
    that runs each request in a loop of its own would otherwise leave each
    loop's pool connected, until PostgreSQL's ``max_connections`` ran out.
    Their loop is gone, so they are closed at the connection level (libpq's
    ``PQfinish``), not through the pool."""
    for loop in [loop for loop in list(_pools) if loop.is_closed()]:
        entry = _pools.pop(loop, None)
        for connection in list(entry.connections) if entry is not None else ():
            connection.pgconn.finish()


async def pool():
    """This loop's pool, opened on first use (callers arriving meanwhile wait for it)."""
    from psycopg_pool import AsyncConnectionPool

    loop = asyncio.get_running_loop()
    entry = _pools.get(loop)
    if entry is None:
        close_abandoned()
        connections: weakref.WeakSet = weakref.WeakSet()

        async def opened(connection: object) -> None:
            connections.add(connection)
            # Counted in chatstatus_db_* as Django's connections are.
            connection.cursor_factory = MeasuredAsyncCursor

        entry = _pools[loop] = _Entry(
            AsyncConnectionPool(
                kwargs=_connect_kwargs(),
                min_size=1,
                max_size=settings.DATABASE_ASYNC_POOL_SIZE,
                timeout=ASYNC_POOL_TIMEOUT,
                open=False,
                name="chatstatus-async",
                configure=opened,
            ),
            connections,
        )
    await entry.pool.open()
    return entry.pool


async def close_all() -> None:
    """Close this loop's pool (tests; a process that ends just drops it)."""
    entry = _pools.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry.pool.close()
    close_abandoned()


def close_everywhere(*, timeout: float = 5.0) -> None:
    """Close every loop's pool, from a thread that runs no loop (a test
    suite's end: a test client's loop may still run in a thread of its own)."""
    close_abandoned()
    for loop, entry in list(_pools.items()):
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(entry.pool.close(), loop).result(timeout)
            _pools.pop(loop, None)
