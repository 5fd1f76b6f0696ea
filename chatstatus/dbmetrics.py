"""Database queries counted and timed (``chatstatus_db_*``), on every connection.

Django's public hook for it: an execute wrapper (``connection.execute_wrapper``)
installed on each new connection (``connection_created``). One wrapper for
every backend, so the embedded mode's SQLite is measured like PostgreSQL.
The event loop's own connections (``chatstatus.adb``) are measured the same
way by their cursor class (``chatstatus.adb.MeasuredAsyncCursor``).
"""

from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from chatstatus.metrics import DbQueryMeasured


def _measured(execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
    with DbQueryMeasured(context["connection"].vendor):
        return execute(sql, params, many, context)


@receiver(connection_created, dispatch_uid="chatstatus.dbmetrics")
def _measure_connection(sender: object, connection: Any, **kwargs: object) -> None:
    if _measured not in connection.execute_wrappers:
        connection.execute_wrappers.append(_measured)
