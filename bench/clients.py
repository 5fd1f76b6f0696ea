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
import contextlib
import json
import multiprocessing as mp
import random
import time
from collections import Counter
from collections.abc import Callable
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

    def __init__(self, size: int, *, main: Callable[[Connection], None] | None = None) -> None:
        context = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[mp.Process] = []
        for _ in range(size):
            parent, child = context.Pipe()
            proc = context.Process(target=main or worker_main, args=(child,), daemon=True)
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


# --- conversations: visitors who write, operators who reply (bench/conversations.py) ---


class HttpClient:
    """A small HTTP/1.1 client from one source address, keeping its
    connections alive like a browser (a second request while one is in flight
    opens a second connection)."""

    __slots__ = ("host", "port", "local_ip", "idle")

    def __init__(self, host: str, port: int, local_ip: str | None = None) -> None:
        self.host, self.port, self.local_ip = host, port, local_ip
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        local = (self.local_ip, 0) if self.local_ip else None
        return await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def request(
        self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, timeout: float = 30
    ) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        for attempt in range(2):
            reused = bool(self.idle)
            reader, writer = self.idle.pop() if reused else await self._open()
            try:
                writer.write(raw)
                status, data, keep = await asyncio.wait_for(_http_response(reader), timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and attempt == 0:
                    continue  # the server closed an idle connection: once more on a fresh one
                raise ConnectionError(str(exc)) from exc
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, data
        raise ConnectionError("unreachable")

    def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _http_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {}
    for line in head[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        data = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        data = b"".join(chunks)
    else:
        data, keep = await reader.read(), False
    return status, data, keep


def _message_frame(message: dict) -> tuple[str, str, str]:
    return message.get("client_id") or "", message.get("author") or "", message.get("kind") or ""


class ChatOperator:
    """An operator's app: a token socket that heartbeats and records every
    message frame it gets, and an HTTP client for its replies."""

    __slots__ = ("index", "url", "token", "http", "ws", "receipts", "counts", "tasks")

    def __init__(self, index: int, url: str, token: str, http: HttpClient) -> None:
        self.index, self.url, self.token, self.http = index, url, token, http
        self.ws: ClientConnection | None = None
        self.receipts: list[tuple[str, float]] = []  # (client_id of a visitor's message, received at)
        self.counts: Counter = Counter()  # every other frame, by kind
        self.tasks: list[asyncio.Task] = []

    async def open(self, worker: "ChatWorker", *, heartbeat_s: float) -> str | None:
        headers = {"Authorization": f"Token {self.token}"} if self.token else None
        try:
            async with worker.gate:
                self.ws = await connect(
                    self.url,
                    additional_headers=headers,
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    open_timeout=worker.open_timeout,
                    close_timeout=2,
                    max_queue=None,
                )
                first = json.loads(await asyncio.wait_for(self.ws.recv(), worker.open_timeout))
        except Exception as exc:  # a failed connection is reported, not fatal
            return _failure_kind(exc)
        if first.get("type") not in ("hello", "status"):
            return f"unexpected_{first.get('type')}"
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._beat(heartbeat_s))]
        return None

    async def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        try:
            async for raw in ws:
                now = time.monotonic()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    client_id, author, _kind = _message_frame(frame["message"])
                    if author == "visitor":
                        self.receipts.append((client_id, now))
                    else:
                        self.counts[f"message_{author}"] += 1
                else:
                    self.counts[str(kind)] += 1
        except ConnectionClosed:
            self.counts["closed"] += 1

    async def _beat(self, every: float) -> None:
        """Heartbeats like the apps: every ``every`` seconds, ±20 % jitter."""
        ws = self.ws
        assert ws is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(every * (0.8 + 0.4 * random.random()))
                await ws.send(HEARTBEAT)


class ChatVisitor:
    """A visitor: a widget socket that names the visitor's token and records
    every message frame it gets, and an HTTP client (its own address)."""

    __slots__ = ("index", "url", "http", "token", "conversation_id", "ws", "receipts", "task")

    def __init__(self, index: int, url: str, http: HttpClient, token: str | None, conversation_id: int | None) -> None:
        self.index, self.url, self.http = index, url, http
        self.token, self.conversation_id = token, conversation_id
        self.ws: ClientConnection | None = None
        # (client_id, author, kind, received at (monotonic), received at (wall clock))
        self.receipts: list[tuple[str, str, str, float, float]] = []
        self.task: asyncio.Task | None = None

    async def start(self, widget_key: str) -> str | None:
        """The first message, from the widget's HTTP endpoint: a token and a conversation."""
        body = json.dumps({"body": "Hello, is anyone there?", "client_id": f"start-{self.index}"}).encode()
        try:
            status, data = await self.http.request(
                "POST",
                f"/widget/v1/{widget_key}/conversations",
                body=body,
                headers={"Content-Type": "application/json"},
            )
        except Exception as exc:  # noqa: BLE001 (a failed start is a measured outcome)
            return f"start_{_failure_kind(exc)}"
        if status not in (200, 201):
            return f"start_http_{status}"
        answer = json.loads(data)
        self.token, self.conversation_id = answer["visitor_token"], answer["conversation"]["id"]
        return None

    async def open(self, worker: "ChatWorker", *, identify: bool) -> str | None:
        try:
            async with worker.gate:
                self.ws = await connect(
                    self.url,
                    local_addr=(self.http.local_ip, 0) if self.http.local_ip else None,
                    compression=None,
                    proxy=None,
                    ping_interval=None,
                    open_timeout=worker.open_timeout,
                    close_timeout=2,
                    user_agent_header=None,
                    max_queue=None,
                )
                first = json.loads(await asyncio.wait_for(self.ws.recv(), worker.open_timeout))
                if first.get("type") != "status":
                    return f"unexpected_{first.get('type')}"
                if identify:
                    await self.ws.send(json.dumps({"type": "visitor", "token": self.token}))
        except Exception as exc:  # a failed connection is reported, not fatal
            return _failure_kind(exc)
        self.task = asyncio.create_task(self._read())
        return None

    async def _read(self) -> None:
        ws = self.ws
        assert ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now, wall = time.monotonic(), time.time()
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    self.receipts.append((*_message_frame(frame["message"]), now, wall))


class ChatWorker(Worker):
    """Visitors and operators of one conversation benchmark, and the traffic
    between them on a schedule (``bench/conversations.py``)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.chat_operators: list[ChatOperator] = []
        self.chat_visitors: dict[int, ChatVisitor] = {}
        self.operators_by_index: dict[int, ChatOperator] = {}
        # (kind, client_id, sent at, answered at, HTTP status or how the request failed)
        self.sends: list[tuple[str, str, float, float, int | str]] = []

    async def cmd_chat_operators(self, specs: list[tuple[int, str, str, str, int]], options: dict) -> dict:
        """Open one operator app per (index, socket url, token, http host, http port)."""
        self.gate = asyncio.Semaphore(options.get("concurrency", 25))
        self.open_timeout = options.get("open_timeout", 20.0)
        fresh = [ChatOperator(index, url, token, HttpClient(host, port)) for index, url, token, host, port in specs]
        outcomes = await asyncio.gather(*(op.open(self, heartbeat_s=options.get("heartbeat_s", 25.0)) for op in fresh))
        for op, failure in zip(fresh, outcomes, strict=True):
            if failure is None:
                self.chat_operators.append(op)
                self.operators_by_index[op.index] = op
        return {"connected": outcomes.count(None), "failures": dict(Counter(o for o in outcomes if o))}

    async def cmd_chat_visitors(self, specs: list[tuple], options: dict) -> dict:
        """Open one visitor per (index, widget socket url, http host, http port,
        token or None, conversation id or None). Without a token the visitor
        first writes (``options["widget_key"]``) to get one; with
        ``options["identify"]`` the socket then names the token."""
        self.gate = asyncio.Semaphore(options.get("concurrency", 50))
        self.open_timeout = options.get("open_timeout", 20.0)
        widget_key, identify = options.get("widget_key"), options.get("identify", True)
        started = time.monotonic()

        async def one(spec: tuple) -> str | None:
            index, url, host, port, token, conversation_id = spec
            visitor = ChatVisitor(index, url, HttpClient(host, port, client_ip(index)), token, conversation_id)
            if visitor.token is None and widget_key:
                async with self.gate:
                    failure = await visitor.start(widget_key)
                if failure:
                    return failure
            failure = await visitor.open(self, identify=identify and visitor.token is not None)
            if failure is None:
                self.chat_visitors[index] = visitor
            return failure

        outcomes = await asyncio.gather(*(one(spec) for spec in specs))
        return {
            "connected": outcomes.count(None),
            "failures": dict(Counter(o for o in outcomes if o)),
            "seconds": time.monotonic() - started,
            "visitors": [
                (spec[0], self.chat_visitors[spec[0]].token, self.chat_visitors[spec[0]].conversation_id)
                for spec, failure in zip(specs, outcomes, strict=True)
                if failure is None
            ],
        }

    async def cmd_chat_run(self, schedule: list[tuple], start: float, options: dict) -> dict:
        """Send each item of ``schedule`` at ``start`` + its offset (monotonic),
        without waiting for earlier answers:

        * ``(offset, "v", visitor index, client_id)``: the visitor writes;
        * ``(offset, "r", operator index, conversation id, visitor index, client_id)``: an operator replies.

        ``options["mode"]``: ``project`` (the widget endpoint; ``options["reply_path"]``
        with the operator's token) or ``baseline`` (the relay endpoint of ``bench/baseline_app.py``).
        """
        baseline = options.get("mode") == "baseline"
        widget_key, reply_path = options.get("widget_key"), options.get("reply_path", "")
        tasks = []
        late = 0
        for item in schedule:
            delay = start + item[0] - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                late += 1
            if item[1] == "v":
                visitor = self.chat_visitors.get(item[2])
                if visitor is None:
                    continue
                client_id = item[3]
                if baseline:
                    frame = _bench_frame(visitor.conversation_id or 0, "visitor", client_id)
                    coro = self._send(
                        "v", client_id, visitor.http, "/bench/relay", {"to": options["operators_group"], "frame": frame}
                    )
                else:
                    coro = self._send(
                        "v",
                        client_id,
                        visitor.http,
                        f"/widget/v1/{widget_key}/conversations/{visitor.conversation_id}/messages",
                        {"body": f"Question {client_id}", "client_id": client_id},
                        {"X-Visitor-Token": visitor.token or ""},
                    )
            else:
                _offset, _kind, op_index, conversation_id, visitor_index, client_id = item
                op = self.operators_by_index.get(op_index)
                if op is None:
                    continue
                if baseline:
                    frame = _bench_frame(conversation_id, "operator", client_id)
                    coro = self._send(
                        "r", client_id, op.http, "/bench/relay", {"to": f"bench.v{visitor_index}", "frame": frame}
                    )
                else:
                    coro = self._send(
                        "r",
                        client_id,
                        op.http,
                        reply_path.format(id=conversation_id),
                        {"body": f"Answer {client_id}", "client_id": client_id},
                        {"Authorization": f"Token {op.token}"},
                    )
            tasks.append(asyncio.create_task(coro))
        await asyncio.gather(*tasks)
        return {"sent": len(tasks), "late": late}

    async def _send(
        self, kind: str, client_id: str, http: HttpClient, path: str, body: dict, headers: dict | None = None
    ) -> None:
        raw = json.dumps(body).encode()
        sent = time.monotonic()
        try:
            status, _data = await http.request(
                "POST", path, body=raw, headers={"Content-Type": "application/json", **(headers or {})}
            )
        except Exception as exc:  # noqa: BLE001 (a failed request is a measured outcome)
            status = _failure_kind(exc)
        self.sends.append((kind, client_id, sent, time.monotonic(), status))

    async def cmd_chat_report(self) -> dict:
        return {
            "operators": [(op.index, op.receipts, dict(op.counts)) for op in self.chat_operators],
            "visitors": [(visitor.index, visitor.receipts) for visitor in self.chat_visitors.values()],
            "sends": self.sends,
        }

    async def cmd_chat_count(self) -> int:
        """Frames received so far, at every socket of this process."""
        return sum(len(op.receipts) for op in self.chat_operators) + sum(
            len(visitor.receipts) for visitor in self.chat_visitors.values()
        )

    async def cmd_chat_clear(self) -> None:
        for op in self.chat_operators:
            op.receipts.clear()
            op.counts.clear()
        for visitor in self.chat_visitors.values():
            visitor.receipts.clear()
        self.sends = []

    async def cmd_close(self) -> int:
        sockets = [op.ws for op in self.chat_operators if op.ws is not None]
        sockets += [visitor.ws for visitor in self.chat_visitors.values() if visitor.ws is not None]
        for start in range(0, len(sockets), 500):
            await asyncio.gather(*(ws.close() for ws in sockets[start : start + 500]), return_exceptions=True)
        tasks = [task for op in self.chat_operators for task in op.tasks]
        tasks += [visitor.task for visitor in self.chat_visitors.values() if visitor.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in [op.http for op in self.chat_operators] + [v.http for v in self.chat_visitors.values()]:
            client.close()
        self.chat_operators, self.chat_visitors, self.operators_by_index = [], {}, {}
        self.sends = []
        return len(sockets) + await super().cmd_close()


def _bench_frame(conversation_id: int, author: str, client_id: str) -> dict:
    """What the relay baseline carries: a message frame of the project's shape and size."""
    return {
        "type": "message",
        "message": {
            "id": 0,
            "conversation_id": conversation_id,
            "seq": 0,
            "author": author,
            "operator": None,
            "kind": "text",
            "body": f"{'Question' if author == 'visitor' else 'Answer'} {client_id}",
            "client_id": client_id,
            "created_at": "2026-01-01T00:00:00.000Z",
            "asks_email": False,
        },
    }


def chat_worker_main(conn: Connection) -> None:
    raise_nofile()
    asyncio.run(ChatWorker(conn).serve())
