"""The one step ``manage.py migrate`` takes before Django checks the history.

When Account, Operator and ApiToken moved from ``presence`` to ``accounts``,
``AUTH_USER_MODEL`` became ``accounts.Operator``, so Django's own ``admin``
migrations now depend on ``accounts.0001_initial``. A database migrated before
the move has ``admin.0001_initial`` applied and ``accounts.0001_initial`` not,
which Django refuses as an inconsistent history before running anything.
``accounts.0001_initial`` only adopts tables the database already has (state
operations, nothing in the database), so recording it as applied on such a
database is exactly what running it would do.
"""

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

BEFORE_THE_MOVE = ("presence", "0001_initial")
ADOPTION = ("accounts", "0001_initial")


def adopt_moved_models(connection: BaseDatabaseWrapper) -> bool:
    """Record the adoption on a database migrated before the move; True if it did."""
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return False
    applied = recorder.applied_migrations()
    if BEFORE_THE_MOVE not in applied or ADOPTION in applied:
        return False
    recorder.record_applied(*ADOPTION)
    return True
