"""Client worker processes: each one an asyncio loop holding many WebSockets.

The benchmark process (the controller) drives the workers through pipes with
small commands (``listen``, ``wait``, ``report``, ``beat``, ``close``...) and
gathers what they measured. Times are ``time.monotonic()``: on Linux that is
one system-wide clock, so a timestamp taken by the controller just before a
change compares with the moment a worker received it.

Every widget socket connects from its own loopback address (127.x.y.z): the
server rate-limits widget connections per client address, as it should for
real visitors, who come from many addresses.
"""

import asyncio
import json
import multiprocessing as mp
import random
import time
from collections import Counter
from multiprocessing.connection import Connection

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.common import raise_nofile

HEARTBEAT = json.dumps({"type": "heartbeat"})


def client_ip(index: int) -> str:
    """A distinct loopback source address per client (any 127/8 address is local)."""
    return f"127.{10 + index // 62_500}.{(index // 250) % 250 + 1}.{index % 250 + 1}"


def backoff_delay(failures: int, *, cap: float, dropped: bool = False) -> float:
    """widget.js's reconnect delay: 1 s doubling per failure, ×0.5–1.5 jitter;
    the first retry after a working socket dropped at a random moment of 0.5–8 s."""
    if failures == 1 and dropped:
        return 0.5 + random.random() * 7.5
    return min(cap, 1.0 * 2 ** (failures - 1)) * (0.5 + random.random())


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, InvalidStatus):
        return f"http_{exc.response.status_code}"
    if isinstance(exc, ConnectionClosed):
        return f"closed_{exc.rcvd.code if exc.rcvd else 1006}"
    if isinstance(exc, OSError) and exc.errno:
        return f"oserror_{exc.errno}"
    return type(exc).__name__


class Listener:
    """A visitor's widget socket: records every status it receives."""

    __slots__ = ("worker", "index", "url", "ip", "reconnect", "ws", "version", "log", "events", "settled", "task")

    def __init__(self, worker: "Worker", index: int, url: str, ip: str, *, reconnect: bool) -> None:
        self.worker, self.index, self.url, self.ip, self.reconnect = worker, index, url, ip, reconnect
        self.ws: ClientConnection | None = None
        self.version = -1
        self.log: list[tuple[float, int, str]] = []  # (received at, version, status)
        self.events: list[tuple[float, str]] = []  # (at, "connected" | "closed_<code>" | failure kind)
        self.settled = False  # the first connection attempt has an outcome
        self.task: asyncio.Task | None = None

    def _settle(self) -> None:
        if not self.settled:
            self.settled = True
            self.worker.unsettled -= 1
            if self.worker.unsettled == 0:
                self.worker.all_settled.set()

    async def run(self) -> None:
        failures = 0
        while not self.worker.stopping:
            if await self._session():
                failures = 0
            if not self.reconnect or self.worker.stopping:
                self._settle()
                return
            failures += 1
            dropped = self.version >= 0  # it had received a status: a working socket dropped
            await asyncio.sleep(backoff_delay(failures, cap=self.worker.backoff_cap, dropped=dropped))

    async def _session(self) -> bool:
        try:
            async with self.worker.gate:
                ws = await connect(
                    self.url,
                    local_addr=(self.ip, 0),
                    compression=None,
                    proxy=None,
                    ping_interval=None,  # browsers do not ping; they answer the server's pings
                    open_timeout=self.worker.open_timeout,
                    close_timeout=2,
                    user_agent_header=None,
                )
        except Exception as exc:  # every way a connection attempt fails is counted, none is fatal
            self.events.append((time.monotonic(), _failure_kind(exc)))
            if not self.reconnect:
                self._settle()
            return False
        self.ws = ws
        got_status = False
        try:
            async for raw in ws:
                now = time.monotonic()
                message = json.loads(raw)
                if message.get("type") != "status":
                    continue
                version = message.get("version", 0)
                self.log.append((now, version, message.get("status")))
                if not got_status:
                    got_status = True
                    self.events.append((now, "connected"))
                    self._settle()
                self.worker.on_version(self.version, version)
                self.version = max(self.version, version)
        except ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 (a broken socket is a measured outcome)
            self.events.append((time.monotonic(), _failure_kind(exc)))
        finally:
            self.ws = None
        code = ws.close_code if ws.close_code is not None else 1006
        self.events.append((time.monotonic(), f"closed_{code}"))
        return got_status


class Beater:
    """An operator's device socket sending heartbeats and timing their acks."""

    __slots__ = ("index", "url", "token", "ws")

    def __init__(self, index: int, url: str, token: str) -> None:
        self.index, self.url, self.token, self.ws = index, url, token, None

    async def open(self, worker: "Worker") -> str | None:
        try:
            async with worker.gate:
                self.ws = await connect(
                    self.url,
                    additional_headers={"Authorization": f"Token {self.token}"} if self.token else None,
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    open_timeout=worker.open_timeout,
                    close_timeout=2,
                    max_queue=None,
                )
                hello = json.loads(await asyncio.wait_for(self.ws.recv(), worker.open_timeout))
        except Exception as exc:  # a failed connection is reported, not fatal
            return _failure_kind(exc)
        return None if hello.get("type") == "hello" else f"unexpected_{hello.get('type')}"

    async def beat(self, *, rate: float, start: float, end: float, rtts: list[float], stats: Counter) -> None:
        interval = 1 / rate
        due = start + random.random() * interval
        ws = self.ws
        assert ws is not None
        while due < end:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()
            try:
                await ws.send(HEARTBEAT)
                stats["sent"] += 1
                while True:
                    raw = await asyncio.wait_for(ws.recv(), 5)
                    if '"heartbeat_ack"' in raw:
                        break
            except TimeoutError:
                stats["timeouts"] += 1
                continue
            except ConnectionClosed:
                stats["closed"] += 1
                return
            rtts.append(time.monotonic() - sent)
            due += interval
            if due < time.monotonic():
                # Behind schedule: the achieved rate, not a burst, shows it.
                stats["late"] += 1
                due = time.monotonic()


class Worker:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.listeners: list[Listener] = []
        self.beaters: list[Beater] = []
        self.stopping = False
        self.gate = asyncio.Semaphore(100)
        self.open_timeout = 20.0
        self.backoff_cap = 10.0
        self.unsettled = 0
        self.all_settled = asyncio.Event()
        self.target: int | None = None
        self.pending = 0
        self.reached = asyncio.Event()

    def on_version(self, old: int, new: int) -> None:
        target = self.target
        if target is not None and old < target <= new:
            self.pending -= 1
            if self.pending <= 0:
                self.reached.set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, self.conn.recv)
            if command == "exit":
                await self.cmd_close()
                self.conn.send(None)
                return
            self.conn.send(await getattr(self, f"cmd_{command}")(*args))

    # -- widget listeners ----------------------------------------------------------
    async def cmd_listen(self, specs: list[tuple[int, str]], options: dict) -> dict:
        """Open one listener per (index, url); return once each has its first
        status or (without reconnect) its failure, or after ``settle_timeout``."""
        self.gate = asyncio.Semaphore(options.get("concurrency", 100))
        self.open_timeout = options.get("open_timeout", 20.0)
        self.backoff_cap = options.get("backoff_cap", 10.0)
        reconnect = options.get("reconnect", False)
        started = time.monotonic()
        self.all_settled = asyncio.Event()
        fresh = [Listener(self, index, url, client_ip(index), reconnect=reconnect) for index, url in specs]
        self.unsettled += len(fresh)
        if not fresh or self.unsettled == 0:
            self.all_settled.set()
        for listener in fresh:
            listener.task = asyncio.create_task(listener.run())
        self.listeners += fresh
        try:
            await asyncio.wait_for(self.all_settled.wait(), options.get("settle_timeout", 120))
        except TimeoutError:
            pass
        connected = sum(1 for listener in fresh if listener.ws is not None and listener.version >= 0)
        failures = Counter(kind for listener in fresh for _at, kind in listener.events if kind != "connected")
        return {"connected": connected, "failures": dict(failures), "seconds": time.monotonic() - started}

    async def cmd_wait(self, version: int, timeout: float) -> int:
        """Wait until every listener holds ``version`` (or newer); return how many do."""
        self.target = version
        self.pending = sum(1 for listener in self.listeners if listener.version < version)
        self.reached = asyncio.Event()
        if self.pending > 0:
            try:
                await asyncio.wait_for(self.reached.wait(), timeout)
            except TimeoutError:
                pass
        self.target = None
        return sum(1 for listener in self.listeners if listener.version >= version)

    async def cmd_gate(self, concurrency: int) -> None:
        """How many connection attempts may be in flight from now on."""
        self.gate = asyncio.Semaphore(concurrency)

    async def cmd_abandon(self) -> int:
        """Stop the listeners that are not connected (a capped connect phase)."""
        idle = [listener for listener in self.listeners if listener.ws is None]
        for listener in idle:
            if listener.task is not None:
                listener.task.cancel()
        await asyncio.gather(*(listener.task for listener in idle if listener.task), return_exceptions=True)
        self.listeners = [listener for listener in self.listeners if listener.ws is not None]
        self.unsettled = 0
        return len(idle)

    async def cmd_count(self) -> dict:
        live = sum(1 for listener in self.listeners if listener.ws is not None)
        return {"listeners": len(self.listeners), "live": live}

    async def cmd_report(self) -> list[tuple[int, list, list]]:
        return [(listener.index, listener.log, listener.events) for listener in self.listeners]

    async def cmd_clear(self) -> None:
        for listener in self.listeners:
            listener.log.clear()
            listener.events.clear()

    async def cmd_close(self) -> int:
        """Close every socket cleanly and forget the listeners and beaters."""
        self.stopping = True
        sockets = [listener.ws for listener in self.listeners if listener.ws is not None]
        sockets += [beater.ws for beater in self.beaters if beater.ws is not None]
        for start in range(0, len(sockets), 500):
            await asyncio.gather(*(ws.close() for ws in sockets[start : start + 500]), return_exceptions=True)
        tasks = [listener.task for listener in self.listeners if listener.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.listeners, self.beaters = [], []
        self.unsettled = 0
        self.stopping = False
        return len(sockets)

    # -- operator heartbeats ---------------------------------------------------------
    async def cmd_operators(self, specs: list[tuple[int, str, str]], options: dict) -> dict:
        self.gate = asyncio.Semaphore(options.get("concurrency", 50))
        self.open_timeout = options.get("open_timeout", 20.0)
        fresh = [Beater(index, url, token) for index, url, token in specs]
        outcomes = await asyncio.gather(*(beater.open(self) for beater in fresh))
        self.beaters += [beater for beater, failure in zip(fresh, outcomes, strict=True) if failure is None]
        return {"connected": outcomes.count(None), "failures": dict(Counter(o for o in outcomes if o))}

    async def cmd_beat(self, rate_per_socket: float, start: float, end: float) -> dict:
        rtts: list[float] = []
        stats: Counter = Counter()
        await asyncio.gather(
            *(
                beater.beat(rate=rate_per_socket, start=start, end=end, rtts=rtts, stats=stats)
                for beater in self.beaters
            )
        )
        return {"rtts": rtts, **stats}


def worker_main(conn: Connection) -> None:
    raise_nofile()
    asyncio.run(Worker(conn).serve())


class Pool:
    """Client worker processes, started with ``spawn`` (no Django state inherited)."""

    def __init__(self, size: int) -> None:
        context = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[mp.Process] = []
        for _ in range(size):
            parent, child = context.Pipe()
            proc = context.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)

    def __len__(self) -> int:
        return len(self.conns)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs if proc.pid is not None]

    def call(self, commands: list[tuple]) -> list:
        """Send one command to each worker (in order), then gather the answers."""
        for conn, command in zip(self.conns, commands, strict=True):
            conn.send(command)
        return [conn.recv() for conn in self.conns]

    def each(self, *command: object) -> list:
        return self.call([command] * len(self.conns))

    def split(self, items: list) -> list[list]:
        """Deal ``items`` round-robin to the workers."""
        return [items[i :: len(self.conns)] for i in range(len(self.conns))]

    def shutdown(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("exit",))
            except OSError:
                continue
        for conn, proc in zip(self.conns, self.procs, strict=True):
            try:
                if conn.poll(30):
                    conn.recv()
            except (EOFError, OSError):
                pass
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        self.conns, self.procs = [], []
