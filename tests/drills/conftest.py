"""Fault drills: real processes, a real Redis of the drill's own, real faults.

Every drill starts its own ``redis-server`` on a free port and points its
Daphne and Celery children (and this test process) at it, so killing,
freezing or restarting that Redis touches nobody else. Timings are short
(heartbeat 1 s, connection TTL 3 s, sweep 1 s) and the grace period is the
30 s minimum, so a drill measures real outages in seconds.
"""

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import redis
import websockets
from django.conf import settings
from django.test import override_settings
from websockets.asyncio.client import connect

from presence.store import RedisStore, get_store
from tests.live import ARTIFACTS, Celery, Daphne, ServerProcess, free_port, wait_for_port

HEARTBEAT_SECONDS = 1
TTL_SECONDS = 3
SWEEP_SECONDS = 1
GRACE_SECONDS = 30
# The busy message's delay in drills (accounts may not go below 15 s).
BUSY_AFTER_SECONDS = 4
# How long a child may take to start on a busy machine.
START_SECONDS = 90


def wait_until(check: Callable[[], object], *, timeout: float, what: str, every: float = 0.1) -> object:
    """Poll ``check`` (a database or HTTP read: there is no event to wait on)
    until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


# --- the drill's own Redis ---------------------------------------------------------


class RedisServer:
    """A ``redis-server`` child that a drill may kill, freeze and restart."""

    def __init__(self, *, name: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.frozen = False
        ARTIFACTS.mkdir(exist_ok=True)
        self.start()

    def start(self) -> None:
        """Start (or restart, on the same port) an empty Redis and wait until it answers."""
        log = (ARTIFACTS / f"redis-{self.name}-{self.port}.log").open("a")
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.frozen = False
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} exited with {self.proc.returncode}")
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)  # polling a port that is not open yet; there is no event to wait on
        client.close()

    def kill(self) -> None:
        """``kill -9``: every key is lost (no persistence)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.frozen = False

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.frozen:
                self.thaw()
            self.kill()


# --- the drill: its Redis, its processes, its sockets -----------------------------------


class PatientDaphne(Daphne):
    """Daphne given longer to start: a drill starts several children at once
    on a machine that may be busy running other tests."""

    def __init__(self, **kwargs: str) -> None:
        try:
            try:
                super().__init__(**kwargs)
            except TimeoutError:
                wait_for_port(self.port, timeout=START_SECONDS, proc=self.proc)
        except BaseException:
            # Nobody else holds this child yet: do not leave it running.
            if hasattr(self, "proc"):
                self.kill()
                self.stop()
            raise


@dataclass
class Drill:
    redis: RedisServer
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis.url,
            "PRESENCE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "PRESENCE_CONNECTION_TTL_SECONDS": str(TTL_SECONDS),
            "PRESENCE_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "CHATSTATUS_TEST_BUSY_AFTER_SECONDS": str(BUSY_AFTER_SECONDS),
            "LOG_LEVEL": "INFO",
        }

    def store(self) -> RedisStore:
        """The presence store as the children see it (same Redis, same prefix)."""
        return RedisStore(self.redis.url, settings.REDIS_PREFIX)

    def daphne(self, name: str) -> Daphne:
        server = PatientDaphne(name=f"drill-{name}", **self.env)
        self.processes.append(server)
        return server

    def celery(self, role: str, name: str) -> Celery:
        """A Celery child, not waited for (see ``ready``)."""
        process = Celery(role, name=f"drill-{name}-{os.getpid()}-{time.monotonic_ns()}", **self.env)
        self.processes.append(process)
        return process

    def start(self, *, webs: tuple[str, ...] = ("web",), workers: int = 1, beats: int = 1) -> "Cluster":
        """Start everything at once (start-up is slow on a busy machine) and
        return when every web listens, every worker consumes, every beat has
        sent a sweep and the worker has run one."""
        cluster = Cluster(
            workers=[self.celery("worker", f"worker-{n}") for n in range(workers)],
            beats=[self.celery("beat", f"beat-{n}") for n in range(beats)],
        )
        with ThreadPoolExecutor(max_workers=max(1, len(webs))) as pool:
            cluster.webs = list(pool.map(self.daphne, webs))
        for worker in cluster.workers:
            ready(worker)
        for beat in cluster.beats:
            ready(beat)
        if cluster.workers and cluster.beats:
            # The first sweep on an empty store reseeds it: let that happen
            # before the drill sets up its operators.
            wait_until(
                lambda: SWEEP_SUCCEEDED.search(cluster.worker.log()),
                timeout=START_SECONDS,
                what="the first sweep",
                every=0.2,
            )
        return cluster

    def stop(self) -> None:
        # Killed, not stopped: nothing of a drill's children needs a clean exit,
        # and a warm Celery shutdown costs seconds per process.
        for process in reversed(self.processes):
            process.kill()
            process.stop()
        self.redis.stop()


@dataclass
class Cluster:
    webs: list[Daphne] = field(default_factory=list)
    workers: list[Celery] = field(default_factory=list)
    beats: list[Celery] = field(default_factory=list)

    @property
    def web(self) -> Daphne:
        return self.webs[0]

    @property
    def worker(self) -> Celery:
        return self.workers[0]

    @property
    def beat(self) -> Celery:
        return self.beats[0]


def ready(process: Celery, *, timeout: float = START_SECONDS) -> Celery:
    """Wait until a worker consumes from the broker, or a beat sent its first sweep."""
    sign = " ready." if "worker" in process.proc.args else "Sending due task presence sweep"
    wait_until(lambda: sign in process.log(), timeout=timeout, what=f"{process.log_path.name} ready", every=0.2)
    return process


@pytest.fixture
def drill(request, transactional_db) -> Iterator[Drill]:
    """A Redis of this drill's own; this process's store and channel layer use it too."""
    server = RedisServer(name=request.node.name[:40])
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [server.url], "prefix": f"{settings.REDIS_PREFIX}:layer"},
        }
    }
    drill = Drill(redis=server)
    try:
        # This process uses services too (factories, a past heartbeat): same
        # store, same layer, same timings as the children.
        with override_settings(
            REDIS_URL=server.url,
            CHANNEL_LAYERS=layers,
            PRESENCE_HEARTBEAT_SECONDS=HEARTBEAT_SECONDS,
            PRESENCE_CONNECTION_TTL_SECONDS=TTL_SECONDS,
            PRESENCE_SWEEP_SECONDS=SWEEP_SECONDS,
        ):
            get_store.cache_clear()
            try:
                yield drill
            finally:
                drill.stop()
                get_store.cache_clear()
    finally:
        server.stop()


@pytest.fixture
def clean_store(drill) -> Iterator[RedisStore]:
    """Overrides the suite's fixture: a drill never touches the shared Redis."""
    yield get_store()


# --- WebSocket clients -------------------------------------------------------------------


class Socket:
    """A WebSocket client that behaves like the widget script or an operator's
    app: it reconnects with a short backoff, optionally heartbeats, and keeps
    every message it receives (with its arrival time) for the test to inspect."""

    def __init__(self, loop: asyncio.AbstractEventLoop, url: str, *, headers: dict, heartbeat: dict | None) -> None:
        self.url = url
        self.headers = headers
        self.heartbeat = heartbeat
        self.inbox: queue.Queue[tuple[float, dict]] = queue.Queue()
        self.received: list[tuple[float, dict]] = []
        self.opened_at: list[float] = []
        self._loop = loop
        self._ws = None
        self._stop = asyncio.Event()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), loop)

    @property
    def opens(self) -> int:
        return len(self.opened_at)

    async def _run(self) -> None:
        delay = 0.25
        while not self._stop.is_set():
            try:
                async with connect(self.url, additional_headers=self.headers, open_timeout=5) as ws:
                    self._ws, delay = ws, 0.25
                    self.opened_at.append(time.monotonic())
                    beat = asyncio.create_task(self._beat(ws)) if self.heartbeat else None
                    try:
                        async for raw in ws:
                            self.inbox.put((time.monotonic(), json.loads(raw)))
                    finally:
                        if beat is not None:
                            beat.cancel()
                        self._ws = None
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, 2)

    async def _beat(self, ws) -> None:
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                await ws.send(json.dumps(self.heartbeat))

    def send(self, message: dict, *, timeout: float = 10) -> None:
        """Send on the open connection (waiting for one if it is reconnecting)."""

        async def _send() -> None:
            deadline = time.monotonic() + timeout
            while self._ws is None:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{self.url}: no open connection to send on")
                await asyncio.sleep(0.05)
            await self._ws.send(json.dumps(message))

        asyncio.run_coroutine_threadsafe(_send(), self._loop).result(timeout + 5)

    def wait_for(self, predicate: Callable[[dict], bool], *, timeout: float, what: str) -> tuple[float, dict]:
        """The first not yet consumed message that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [message for _at, message in self.received[-5:]]
                raise AssertionError(f"{what}: not received within {timeout} s (last messages: {seen})")
            try:
                arrived, message = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            self.received.append((arrived, message))
            if predicate(message):
                return arrived, message

    def drain(self) -> list[dict]:
        """Everything received so far and not yet consumed."""
        messages = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return messages
            self.received.append(item)
            messages.append(item[1])

    def close(self) -> None:
        async def _close() -> None:
            self._stop.set()
            if self._ws is not None:
                await self._ws.close()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        with contextlib.suppress(Exception):
            self._task.result(10)


class Sockets:
    """Opens clients on one event loop running in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="drill-sockets", daemon=True)
        self._thread.start()
        self.open: list[Socket] = []

    def widget(self, server: Daphne, widget_key: str) -> Socket:
        socket = Socket(self.loop, f"ws://127.0.0.1:{server.port}/ws/widget/{widget_key}/", headers={}, heartbeat=None)
        self.open.append(socket)
        return socket

    def operator(self, server: Daphne, token: str, *, heartbeat: dict | None = None) -> Socket:
        """An operator's app on the token socket; heartbeats every second like the dashboard."""
        socket = Socket(
            self.loop,
            f"ws://127.0.0.1:{server.port}/ws/operator/",
            headers={"Authorization": f"Token {token}"},
            heartbeat=heartbeat or {"type": "heartbeat"},
        )
        self.open.append(socket)
        return socket

    def shutdown(self) -> None:
        for socket in self.open:
            with contextlib.suppress(Exception):
                socket.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    clients = Sockets()
    yield clients
    clients.shutdown()


def is_hello(message: dict) -> bool:
    return message.get("type") == "hello"


def is_widget_status(status: str) -> Callable[[dict], bool]:
    return lambda message: message.get("type") == "status" and message.get("status") == status


def is_operator_status(operator_id: int, status: str, source: str | None = None) -> Callable[[dict], bool]:
    def check(message: dict) -> bool:
        return (
            message.get("type") == "operator_status"
            and message.get("operator_id") == operator_id
            and message.get("status") == status
            and (source is None or message.get("source") == source)
        )

    return check


# --- HTTP --------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict | None
    seconds: float


def http(
    server: Daphne,
    method: str,
    path: str,
    *,
    body: dict | None = None,
    headers: dict | None = None,
    timeout: float = 15,
) -> Reply:
    """One request to a child server; a refused or timed-out request is a failure."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (our own child server)
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return Reply(status, parsed, time.monotonic() - started)


def widget_status(server: Daphne, widget_key: str) -> str | None:
    reply = http(server, "GET", f"/widget/v1/{widget_key}/status")
    return reply.body["status"] if reply.status == 200 and reply.body else None


# --- what the Celery children did (from their logs) -------------------------------------

SWEEP_SUCCEEDED = re.compile(
    r"^\[(?P<at>[^:\]]+:[^:\]]+:[^:\]]+): INFO/\w+\] Task presence\.tasks\.presence_sweep\[[^\]]+\] succeeded", re.M
)
SWEEP_SENT = re.compile(r"Scheduler: Sending due task presence sweep", re.M)
# Nobody revokes tasks by id here: a discarded sweep is one whose ``expires`` passed.
SWEEP_DISCARDED = re.compile(r"Discarding revoked task: presence\.tasks\.presence_sweep\[(?P<id>[^\]]+)\]", re.M)
SWEEP_RAN = re.compile(r"Task presence\.tasks\.presence_sweep\[(?P<id>[^\]]+)\] succeeded", re.M)


class LogWatch:
    """What a child process logs from now on."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.offset = len(process.log())

    def new(self) -> str:
        return self.process.log()[self.offset :]

    def count(self, pattern: re.Pattern) -> int:
        return len(pattern.findall(self.new()))

    def wait_for(self, pattern: re.Pattern, *, count: int = 1, timeout: float, what: str) -> None:
        wait_until(lambda: self.count(pattern) >= count, timeout=timeout, what=what, every=0.2)


def sweeps_finished_at(log: str) -> list[float]:
    """POSIX times at which the worker's sweeps finished (its log is in local time)."""
    local = datetime.now(UTC).astimezone().tzinfo
    return [
        datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=local).timestamp()
        for match in SWEEP_SUCCEEDED.finditer(log)
    ]


# --- figures ------------------------------------------------------------------------------

REPORT = ARTIFACTS / "drills.jsonl"


def report(name: str, **figures: object) -> None:
    """Record a drill's measured figures (docs/RELIABILITY.md quotes them)."""
    rounded = {key: round(value, 2) if isinstance(value, float) else value for key, value in figures.items()}
    line = json.dumps({"drill": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), **rounded})
    with REPORT.open("a") as out:
        out.write(line + "\n")
    print(line)
