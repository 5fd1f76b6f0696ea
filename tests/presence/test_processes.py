"""The production topology for real: two Daphne processes sharing Redis and the
database, a Celery worker and one beat, all with short presence timings.

An operator connected to process A switches online and an observer connected
to process B sees it at once; then A is killed with SIGKILL (no close frames,
no disconnect handlers) and the observer sees the operator go offline when the
grace period runs out, swept by the worker.
"""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts.auth import token_create
from presence.models import Source, StatusEvent
from tests.factories import make_account, make_operator
from tests.live import Celery, Daphne
from tests.presence.conftest import committed_db

pytestmark = [pytest.mark.production_only, committed_db]

GRACE = 30  # the smallest grace period an account may have
SWEEP = 1
TIMINGS = {
    "PRESENCE_HEARTBEAT_SECONDS": "1",
    "PRESENCE_CONNECTION_TTL_SECONDS": "3",
    "PRESENCE_SWEEP_SECONDS": str(SWEEP),
}


@dataclass
class Cluster:
    web_a: Daphne
    web_b: Daphne
    worker: Celery
    beat: Celery
    widget_key: str
    alice_id: int
    alice_token: str
    bob_token: str

    def logs(self) -> str:
        return "\n".join(
            f"--- {proc.log_path.name}\n{proc.log()[-3000:]}"
            for proc in (self.web_a, self.web_b, self.worker, self.beat)
        )


def start(kind: type, **kwargs) -> Daphne | Celery:
    """Start a server process; if it never comes up, do not leave it running.

    (``tests.live`` raises from the constructor when the port never opens,
    which would otherwise orphan the child.)
    """
    process = kind.__new__(kind)
    try:
        process.__init__(**kwargs)
    except BaseException:
        if hasattr(process, "proc"):
            process.stop()
        raise
    return process


@pytest.fixture
def cluster():
    account = make_account(stale_after_seconds=GRACE)
    alice = make_operator(account=account, name="Alice")
    bob = make_operator(account=account, name="Bob")
    alice_token, _ = token_create(operator=alice, device="Alice's laptop app")
    bob_token, _ = token_create(operator=bob, device="Bob's laptop app")
    processes = []
    try:
        # The two web processes start side by side; Celery needs no port and
        # boots afterwards, while the test works with the web processes (the
        # worker's first job is due a whole grace period later).
        with ThreadPoolExecutor(2) as pool:
            webs = [pool.submit(start, Daphne, name=f"presence-web-{side}", **TIMINGS) for side in "ab"]
            wait(webs)
        processes += [web.result() for web in webs if web.exception() is None]
        for web in webs:
            if web.exception() is not None:
                raise web.exception()
        web_a, web_b = (web.result() for web in webs)
        worker = start(Celery, role="worker", name="presence-worker", **TIMINGS)
        processes.append(worker)
        beat = start(Celery, role="beat", name="presence-beat", **TIMINGS)
        processes.append(beat)
        yield Cluster(
            web_a=web_a,
            web_b=web_b,
            worker=worker,
            beat=beat,
            widget_key=account.widget_key,
            alice_id=alice.id,
            alice_token=alice_token,
            bob_token=bob_token,
        )
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda process: process.stop(), processes))


async def open_socket(url: str, token: str | None = None) -> ClientConnection:
    headers = {"Authorization": f"Token {token}"} if token else None
    return await connect(url, additional_headers=headers, proxy=None, open_timeout=5)


async def next_message(socket: ClientConnection, wanted, *, timeout: float) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if wanted(message):
                return message


async def keep_heartbeating(socket: ClientConnection) -> None:
    """What a client does: a heartbeat every interval, reading what comes."""

    async def read():
        async for _message in socket:
            pass

    reader = asyncio.create_task(read())
    try:
        while True:
            await socket.send(json.dumps({"type": "heartbeat"}))
            await asyncio.sleep(int(TIMINGS["PRESENCE_HEARTBEAT_SECONDS"]))
    except ConnectionClosed:
        pass
    finally:
        reader.cancel()


async def worker_ready(worker: Celery, *, timeout: float) -> None:
    """Until the worker says it consumes tasks (its log is the only signal it gives)."""
    async with asyncio.timeout(timeout):
        while "ready." not in worker.log():
            await asyncio.sleep(0.1)


def ws_url(server: Daphne, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


async def test_a_change_crosses_processes_and_a_killed_process_is_swept(cluster):
    started = time.monotonic()
    alice = await open_socket(ws_url(cluster.web_a, "/ws/operator/"), cluster.alice_token)
    bob = await open_socket(ws_url(cluster.web_b, "/ws/operator/"), cluster.bob_token)
    widget = await open_socket(ws_url(cluster.web_b, f"/ws/widget/{cluster.widget_key}/"))
    try:
        await next_message(alice, lambda m: m["type"] == "hello", timeout=5)
        await next_message(bob, lambda m: m["type"] == "hello", timeout=5)
        first = await next_message(widget, lambda m: m["type"] == "status", timeout=5)
        assert first["status"] == "offline"
        heartbeats = asyncio.create_task(keep_heartbeating(alice))

        # A status set on process A reaches an observer on process B within a second.
        sent = time.monotonic()
        await alice.send(json.dumps({"type": "set_status", "status": "online"}))
        seen = await next_message(
            bob, lambda m: m["type"] == "operator_status" and m["operator_id"] == cluster.alice_id, timeout=1
        )
        status_latency = time.monotonic() - sent
        assert (seen["status"], seen["source"]) == ("online", "api")
        opened = await next_message(widget, lambda m: m["type"] == "status" and m["status"] == "online", timeout=1)
        widget_latency = time.monotonic() - sent
        assert opened["reason"] == "operators_online"

        # Process A dies without a word; Alice's connection is never closed
        # properly. (The worker must be up first, or the kill-to-offline time
        # would measure how long Celery takes to boot.)
        await worker_ready(cluster.worker, timeout=60)
        cluster.web_a.kill()
        killed = time.monotonic()
        deadline = GRACE + SWEEP + 5
        try:
            gone = await next_message(
                bob,
                lambda m: m["type"] == "operator_status" and m["operator_id"] == cluster.alice_id,
                timeout=deadline,
            )
        except TimeoutError:
            pytest.fail(f"no offline push within {deadline} s of the kill\n{cluster.logs()}")
        offline_after = time.monotonic() - killed
        assert (gone["status"], gone["source"]) == ("offline", "stale_sweep")
        closed = await next_message(widget, lambda m: m["type"] == "status", timeout=2)
        assert (closed["status"], closed["reason"]) == ("offline", "no_operator_online")
        await heartbeats
    finally:
        for socket in (alice, bob, widget):
            await socket.close()

    events = await database_sync_to_async(
        lambda: list(StatusEvent.objects.filter(operator_id=cluster.alice_id).values_list("new", "source"))
    )()
    assert sorted(events) == [("offline", Source.STALE_SWEEP), ("online", Source.API)]
    # The connection TTL (3 s) is shorter than the grace period, so the grace
    # period, counted from the last heartbeat before the kill, decides.
    assert GRACE - 1 <= offline_after <= deadline
    print(
        f"\nstatus A→B {status_latency * 1000:.0f} ms, widget on B {widget_latency * 1000:.0f} ms, "
        f"kill -9 → offline push {offline_after:.1f} s (grace {GRACE} s, sweep {SWEEP} s), "
        f"whole test {time.monotonic() - started:.1f} s after start-up"
    )
