"""Helpers for the presence tests: a publish spy, a query counter that sees every
thread, and operator sockets on the real ASGI router."""

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator

import pytest
import time_machine
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db.backends.utils import CursorWrapper
from django.test import Client
from django.utils import timezone

from chatstatus.asgi import router
from presence import events
from presence.services import chatbox

# Real commits, for tests whose consumers or racing threads use connections of
# their own. Emptying only these apps' tables afterwards (without re-creating
# every permission row) keeps such a test to milliseconds instead of a second.
COMMITTED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "accounts",
    "groups",
    "hours",
    "presence",
    "widget",
]
committed_db = pytest.mark.django_db(transaction=True, available_apps=COMMITTED_APPS)


@pytest.fixture(autouse=True)
def running_store(clean_store):
    """The store of a running installation: swept before, so a test's first
    sweep is not taken for one after a wipe (tests of a wipe reset it)."""
    clean_store.ensure_epoch()
    return clean_store


@pytest.fixture
def clock():
    """Time stands still at the test's start; tests move it with ``shift``."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def break_recompute_of(monkeypatch, account_id: int) -> None:
    """The chat box facts of ``account_id`` fail to compute (a schedule the
    evaluator chokes on); every other account's still compute."""
    compute = chatbox.chat_box_states

    def states(*, account_ids, now):
        if account_id in account_ids:
            raise ValueError("a schedule the evaluator chokes on")
        return compute(account_ids=account_ids, now=now)

    monkeypatch.setattr(chatbox, "chat_box_states", states)


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    """Every (group, message) the services publish, in order; still delivered."""
    sent: list[tuple[str, dict]] = []
    lock = threading.Lock()
    deliver, adeliver = events.publish_many, events.apublish_many

    def spy(messages: list[tuple[str, dict]]) -> None:
        with lock:
            sent.extend(messages)
        deliver(messages)

    async def aspy(messages: list[tuple[str, dict]]) -> None:
        with lock:
            sent.extend(messages)
        await adeliver(messages)

    monkeypatch.setattr(events, "publish_many", spy)
    monkeypatch.setattr(events, "apublish_many", aspy)
    return sent


def of_type(sent: list[tuple[str, dict]], kind: str) -> list[tuple[str, dict]]:
    return [(group, message) for group, message in sent if message["type"] == kind]


class QueryCounter:
    def __init__(self) -> None:
        self.sql: list[str] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.sql)

    def record(self, sql: str) -> None:
        with self._lock:
            self.sql.append(sql)


@contextlib.contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Counts SQL run on any connection of any thread (consumers run theirs in
    worker threads, which ``django_assert_num_queries`` does not see)."""
    counter = QueryCounter()
    execute, executemany = CursorWrapper.execute, CursorWrapper.executemany

    def counted_execute(self, sql, params=None):
        counter.record(sql)
        return execute(self, sql, params)

    def counted_executemany(self, sql, param_list):
        counter.record(sql)
        return executemany(self, sql, param_list)

    CursorWrapper.execute, CursorWrapper.executemany = counted_execute, counted_executemany
    try:
        yield counter
    finally:
        CursorWrapper.execute, CursorWrapper.executemany = execute, executemany


# --- operator sockets -----------------------------------------------------------------


def session_headers(operator, *, origin: str = "http://testserver", host: str = "testserver") -> list:
    """Headers of a dashboard socket: the session cookie of a logged-in browser."""
    client = Client()
    client.force_login(operator)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), (b"host", host.encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    return headers


def session_key_of(headers: list) -> str:
    cookie = dict(headers)[b"cookie"].decode()
    return cookie.partition("=")[2]


def token_headers(key: str) -> list:
    """Headers of a native app's socket."""
    return [(b"authorization", f"Token {key}".encode())]


class Socket:
    """An operator socket on the real router, with JSON helpers."""

    def __init__(self, headers: list, path: str = "/ws/operator/") -> None:
        self.comm = WebsocketCommunicator(router, path, headers=headers)
        self.close_code: int | None = None

    async def connect(self) -> bool:
        connected, code = await self.comm.connect(timeout=5)
        if not connected:
            self.close_code = code
        return connected

    async def send(self, message: dict) -> None:
        await self.comm.send_to(text_data=json.dumps(message))

    async def receive(self, timeout: float = 3) -> dict:
        return json.loads(await self.comm.receive_from(timeout=timeout))

    async def receive_until(self, predicate: Callable[[dict], bool], timeout: float = 3) -> dict:
        """The first message matching ``predicate``; others on the way are dropped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.receive(timeout=timeout)
                if predicate(message):
                    return message

    async def closed_with(self, timeout: float = 3) -> int:
        output = await self.comm.receive_output(timeout=timeout)
        while output["type"] != "websocket.close":
            output = await self.comm.receive_output(timeout=timeout)
        return output.get("code", 1000)

    async def nothing_more(self, timeout: float = 0.3) -> bool:
        return await self.comm.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.comm.disconnect(timeout=5)


def is_status(operator_id: int, status: str) -> Callable[[dict], bool]:
    return lambda m: m["type"] == "operator_status" and m["operator_id"] == operator_id and m["status"] == status
