"""A database of release d0d6ef1 upgrades to this code with nothing lost.

The fixtures (``fixtures/release_d0d6ef1.*``) were made by
``fixtures/make_release_fixture.py`` from that release, before the models
moved between apps (Account, Operator and ApiToken from ``presence`` to
``accounts``, their tables kept). For each backend the test loads the
release's dump into an empty database, runs this code's real ``manage.py
migrate`` on it in a subprocess, then checks it against the release's facts
(``check_upgraded.py``, another subprocess), that ``makemigrations --check`` is
clean and that a second ``migrate`` changes nothing.

The PostgreSQL case needs a server on 127.0.0.1:5432 (user postgres); under CI
(CI=true) a missing server fails the test, elsewhere it is skipped.
"""

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RELEASE = "d0d6ef1"
FACTS = FIXTURES / f"release_{RELEASE}.json"
PG_SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
SECRET_KEY = "release-upgrade-test-secret-key-" + "x" * 40
COMMAND_TIMEOUT = 240


def _env(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CHATSTATUS_TEST_MODE")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        DJANGO_SETTINGS_MODULE="chatstatus.settings",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"


# --- the databases ---------------------------------------------------------------------------


class SqliteDatabase:
    def __init__(self, path: Path):
        self.path = path
        self.url = f"sqlite:///{path}"

    def load(self, script: str) -> None:
        conn = sqlite3.connect(self.path)
        try:
            conn.executescript(script)
        finally:
            conn.close()

    def row_counts(self) -> dict[str, int]:
        conn = sqlite3.connect(self.path)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
        finally:
            conn.close()


class PostgresDatabase:
    def __init__(self, name: str):
        self.name = name
        self.url = f"postgres://{PG_SERVER['user']}@{PG_SERVER['host']}:{PG_SERVER['port']}/{name}"

    def connect(self):
        import psycopg

        return psycopg.connect(**{**PG_SERVER, "dbname": self.name}, autocommit=True)

    def load(self, script: str) -> None:
        # The whole pg_dump text in one execute: psycopg sends a parameterless query as is.
        with self.connect() as conn:
            conn.execute(script)

    def row_counts(self) -> dict[str, int]:
        with self.connect() as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                ).fetchall()
            ]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


@pytest.fixture
def sqlite_database(tmp_path):
    return SqliteDatabase(tmp_path / f"release_{RELEASE}.sqlite3")


@pytest.fixture
def postgres_database():
    import psycopg

    try:
        server = psycopg.connect(**PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable on {PG_SERVER['host']}:{PG_SERVER['port']}: {exc}"
        # As everywhere in the suite: a missing service is a failure, never a skip.
        pytest.fail(message)
    name = f"chatstatus_upgrade_{uuid.uuid4().hex[:12]}"
    with server:
        server.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PostgresDatabase(name)
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgres", marks=pytest.mark.production_only)],
)
def test_release_database_upgrades_with_nothing_lost(backend, request):
    database = request.getfixturevalue(f"{backend}_database")
    database.load((FIXTURES / f"release_{RELEASE}.{backend}.sql").read_text(encoding="utf-8"))
    loaded = database.row_counts()
    assert loaded.get("presence_operator"), "the dump loaded no operators"
    env = _env(database.url)

    migrated = _run(env, "manage.py", "migrate", "--noinput")
    assert migrated.returncode == 0, "migrate failed on the release database\n" + _explain(migrated)

    checked = _run(env, "-m", "tests.upgrade.check_upgraded", str(FACTS))
    assert checked.returncode == 0, "the upgraded database lost something\n" + _explain(checked)

    drift = _run(env, "manage.py", "makemigrations", "--check", "--dry-run")
    assert drift.returncode == 0, "models and migrations disagree after the upgrade\n" + _explain(drift)

    before = database.row_counts()
    again = _run(env, "manage.py", "migrate", "--noinput")
    assert again.returncode == 0, "a second migrate failed\n" + _explain(again)
    assert "No migrations to apply." in again.stdout, "a second migrate applied something\n" + _explain(again)
    assert database.row_counts() == before, "a second migrate changed rows (content types, permissions…)"
