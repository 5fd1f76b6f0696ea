"""Conversations under load: visitors write, operators reply, busy timers fire.

Set-up: one account with 1,000 visitors, each with an open conversation (its
first message sent through ``POST /widget/v1/{key}/conversations``) and a
widget socket that names its token (``{"type":"visitor","token":T}``), and 20
operators on operator sockets (token auth, heartbeating every 25 s ± 20 %);
two Daphne processes behind no proxy (every client's socket and HTTP
connection on one of them, spread), PostgreSQL, Redis, a Celery worker (as the
README runs it: prefork, one child per core) and one beat. Clients live in 2
processes (``bench/clients.py``); times are ``time.monotonic()``, one clock for
every process.

1. **Baseline**: the traffic of 2. through a bare Channels relay
   (``bench/baseline_app.py``: ``POST /bench/relay`` → one ``group_send`` on the
   same ``channels_redis`` pub/sub layer → the sockets of that group), on two
   Daphne processes. First: a project that falls behind goes on working
   through its backlog after its clients gave up. Then the **floor**: the same
   relay storing each message first as the project does (its conversation's
   row locked, the message inserted, the conversation updated: one
   transaction, on the event loop through psycopg's asyncio pool, no ORM, no
   thread), on two more Daphne processes: what any design on Channels,
   Daphne and PostgreSQL pays on this machine.
2. **Traffic** (5 s warm-up, then 30 s measured): 100 visitor messages a
   second (``POST …/conversations/{id}/messages``, from the visitor's own
   address and keep-alive connection) and 100 operator replies a second to
   random conversations, by random operators, over HTTP with the operator's
   token: ``POST /api/v1/conversations/{id}/messages`` (its 120-a-minute
   limit per operator raised in the bench's servers: 20 operators sending 100
   a second are 300 a minute each), or, while the API has no such endpoint, a
   bench-only view that does what it will (token lookup, then
   ``conversations.services.operator_message_post``; see ``__getattr__``),
   served by the same two Daphne processes. Measured: visitor → operator
   (request sent → frame at *each* of the 20 operator sockets) and operator →
   visitor (reply sent → frame at the visitor's widget socket), p50/p99; loss
   (an accepted message whose frame never arrived: the run ends once no socket
   has received a frame for 3 s) and failed requests must be 0; a 503 is the
   web process shedding load (``chatstatus.admission``), counted as failed.
   Beside them: the web processes' CPU per message (what the machine's load
   moves least), the benchmark database's connections (``pg_stat_activity``)
   and the machine's load, sampled every half second.
3. **SQL per visitor message**: counted in this process with Django's
   ``CaptureQueriesContext`` around the whole widget request (Django's test
   client: middleware, rate limits, the view, the service) for a sample of
   messages, and around the service alone (statements; BEGIN and COMMIT not
   counted); the same for an operator's reply. Beside it, transactions and
   rows written per message under load (``pg_stat_database`` /
   ``pg_stat_user_tables`` deltas). ``pg_stat_statements`` is not loaded on
   this PostgreSQL.
4. **Busy timers**, on two fresh web processes: 1,000 conversations of a
   second account (busy delay 45 s, an account's default; an online
   operator) whose visitors write at the same moment
   (``visitor_message_post(now=T)``: every timer due at T + 45 s), each
   visitor on a widget socket. Beat runs
   ``conversations.tasks.timers_fire`` every second (added to the beat's
   schedule by the bench while ``chatstatus.celery`` does not schedule it);
   measured: lateness of the busy message at the visitor's socket after the
   due time (max ≤ 2 s), exactly one busy message per conversation (the
   database and the sockets), duplicates 0.

``--py-spy`` samples the web processes while measuring, and the worker's
children while the timers fire (``bench/results/logs/conversations-*.txt``,
collapsed stacks). ``--rate`` and ``--seconds`` change the traffic.

    .venv/bin/python bench/conversations.py [--quick] [--py-spy] [--rate 100] [--seconds 30]
"""

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import Pool, chat_worker_main  # noqa: E402
from bench.common import (  # noqa: E402
    LOGS,
    Infra,
    Report,
    Server,
    cpu_seconds,
    latency_stats,
    log,
    parser,
    raise_nofile,
    table,
)

# delay: the busy account's busy_after_seconds (45 is an account's default);
# writing the 1,000 messages that start the timers takes 12-35 s on this machine.
FULL = {"visitors": 1_000, "operators": 20, "rate": 100, "seconds": 30.0, "warmup": 5.0, "busy": 1_000, "delay": 45}
QUICK = {"visitors": 200, "operators": 5, "rate": 20, "seconds": 8.0, "warmup": 2.0, "busy": 200, "delay": 20}
HEARTBEAT_S = 25.0
TARGET_P99_MS = 100.0
TARGET_QUERIES = 3
TARGET_BUSY_LATENESS_S = 2.0
SQL_SAMPLE = 50
API_REPLY_PATH = "/api/v1/conversations/{id}/messages"
BENCH_REPLY_PATH = "/bench/v1/conversations/{id}/messages"
BENCH_REPLY_RATE = "1000000/min"
TIMERS_TASK = "conversations.tasks.timers_fire"
OPERATORS_GROUP = "bench.ops"
# Beat with the conversation timers added, for a project whose chatstatus.celery
# does not schedule them (yet): the same app, one more periodic task.
BEAT_WITH_TIMERS = f"""
import sys
from chatstatus.celery import app

@app.on_after_finalize.connect
def _conversation_timers(sender, **kwargs):
    sender.add_periodic_task(1.0, sender.signature({TIMERS_TASK!r}, expires=1.0), name="conversation timers (bench)")

sys.exit(app.start(["beat", *sys.argv[1:]]))
"""


# --- the bench-only operator reply path, served only by this benchmark's Daphne -------------


def bench_operator_reply(request, conversation_id: int):
    """What ``POST /api/v1/conversations/{id}/messages`` does, for as long as
    the API does not have it: the operator's token, then the service."""
    from django.http import JsonResponse

    from accounts.auth import parse_authorization, token_lookup
    from conversations import services
    from conversations.payloads import message_payload

    key = parse_authorization(request.headers.get("Authorization"))
    token = token_lookup(key) if key else None
    if token is None:
        return JsonResponse({"detail": "unauthenticated"}, status=401)
    data = json.loads(request.body)
    try:
        posted = services.operator_message_post(
            conversation_id=conversation_id, operator=token.operator, body=data["body"], client_id=data["client_id"]
        )
    except services.ConversationNotFound:
        return JsonResponse({"detail": "not_found"}, status=404)
    except services.ConversationClosed:
        return JsonResponse({"detail": "closed"}, status=409)
    return JsonResponse(message_payload(posted.message), status=201 if posted.created else 200)


def __getattr__(name: str):
    # Built on first use inside the benchmark's Daphne only: importing this
    # module elsewhere (the controller, the client workers) sets nothing up.
    if name == "urlpatterns":
        from django.urls import include, path
        from django.views.decorators.csrf import csrf_exempt

        route = BENCH_REPLY_PATH.format(id="<int:conversation_id>")[1:]
        return [path(route, csrf_exempt(bench_operator_reply)), path("", include("chatstatus.urls"))]
    if name == "application":
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")
        django.setup()
        from django.conf import settings

        settings.ROOT_URLCONF = __name__
        with contextlib.suppress(ImportError):
            from api.throttles import OperatorMessageRateThrottle

            # 120 replies a minute per operator stops a runaway script, not a
            # person; 20 operators sending 100 a second are 300 a minute each.
            # The throttle still runs (its store round trip is part of a reply).
            OperatorMessageRateThrottle.rate = BENCH_REPLY_RATE
        from chatstatus.asgi import application

        return application
    raise AttributeError(name)


# --- the project as deployed: which paths exist ---------------------------------------------


def rest_reply_available() -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(API_REPLY_PATH.format(id=1))
    except Resolver404:
        return False
    return True


def beat_schedules_timers() -> bool:
    from chatstatus.celery import app

    app.loader.import_default_modules()
    app.finalize(auto=True)
    return any(
        (entry.get("task") if isinstance(entry, dict) else getattr(entry, "task", None)) == TIMERS_TASK
        for entry in app.conf.beat_schedule.values()
    )


# The floor's tables (``bench/baseline_app.py`` with ``BENCH_RELAY_WRITES``).
RELAY_TABLES = """
CREATE TABLE bench_relay_conversation (id bigint PRIMARY KEY, last_seq integer NOT NULL DEFAULT 0,
    last_message_at timestamptz, waiting_since timestamptz);
CREATE TABLE bench_relay_message (id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES bench_relay_conversation (id), seq integer NOT NULL,
    author varchar(16) NOT NULL, body text NOT NULL, client_id varchar(64) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (conversation_id, seq), UNIQUE (conversation_id, client_id));
"""


def relay_with_writes(infra: Infra, *, visitors: int) -> list[Server]:
    """The floor's tables in the benchmark database (a row per visitor's
    conversation, ids as the relay's clients number them) and its two Daphne processes."""
    import psycopg

    conninfo = f"host=127.0.0.1 user=postgres dbname={infra.db}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(RELAY_TABLES)
        conn.execute("INSERT INTO bench_relay_conversation (id) SELECT generate_series(0, %s)", [visitors])
    return infra.daphnes(
        [
            {
                "name": f"floor{i}",
                "app": "bench.baseline_app:application",
                "settings": "bench.baseline_settings",
                "env": {"BENCH_RELAY_WRITES": conninfo},
            }
            for i in range(2)
        ]
    )


def start_celery(infra: Infra, *, timers_scheduled: bool) -> tuple[Server, Server]:
    """A worker as the README runs it (prefork, one child per core) and one beat."""
    worker = Server(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "chatstatus",
            "worker",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=dict(infra.env),
        name=f"{infra.name}-celery-worker",
    )
    schedule = str(LOGS / f"{infra.name}-celerybeat-{os.getpid()}")
    beat_args = ["--loglevel", "INFO", "--schedule", schedule]
    if timers_scheduled:
        beat_args = [sys.executable, "-m", "celery", "-A", "chatstatus", "beat", *beat_args]
    else:
        beat_args = [sys.executable, "-c", BEAT_WITH_TIMERS, *beat_args]
    beat = Server(beat_args, env=dict(infra.env), name=f"{infra.name}-celery-beat")
    infra.servers += [worker, beat]
    return worker, beat


def wait_for_log(server: Server, text: str, *, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        if text in server.log_path.read_text(errors="replace"):
            return
        time.sleep(0.2)  # a log line has no event to wait on
    raise TimeoutError(f"{server.name}: no {text!r} within {timeout} s")


def db_writes(infra: Infra) -> dict | None:
    """``Infra.db_writes``, retried for up to 30 s, else None: the PostgreSQL of
    this machine is shared, and at times every connection is taken."""
    for _attempt in range(60):
        try:
            return infra.db_writes()
        except Exception:  # noqa: BLE001 (psycopg.OperationalError: too many clients)
            time.sleep(0.5)
    log("  (no database statistics: PostgreSQL refused every connection for 30 s)")
    return None


class Sampler:
    """Every half second during a run: the benchmark database's connections
    (``pg_stat_activity``) and the machine's 1-minute load average."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.connections: list[int] = []
        self.load: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        conn = None
        while not self._stop.wait(0.5):
            self.load.append(os.getloadavg()[0])
            try:
                if conn is None:
                    conn = psycopg.connect(f"host=127.0.0.1 user=postgres dbname={self.db}", autocommit=True)
                count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.db]).fetchone()
                self.connections.append(int(count[0]) - 1)  # not this one
            except Exception:  # noqa: BLE001 (too many clients: a sample lost, not the run)
                conn = None
        if conn is not None:
            conn.close()

    def summary(self) -> dict:
        return {
            "db_connections_max": max(self.connections, default=None),
            "db_connections_mean": round(sum(self.connections) / len(self.connections), 1)
            if self.connections
            else None,
            "loadavg_1min_max": max(self.load, default=None),
            "loadavg_1min_mean": round(sum(self.load) / len(self.load), 2) if self.load else None,
        }


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (a prefork worker's pool)."""
    total = 0.0
    with contextlib.suppress(OSError):
        total += cpu_seconds(pid)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total += sum(process_tree_cpu(int(child)) for child in children)
    return total


# --- traffic ----------------------------------------------------------------------------------


def schedule_traffic(
    *, visitors: list[int], conversation_of: dict[int, int], operators: int, params: dict, rng: random.Random
) -> tuple[list[tuple], list[tuple], dict[str, int]]:
    """Visitor messages and operator replies at ``rate`` a second each, evenly
    spaced, warm-up first (client ids ``w…``, then ``m…`` for the measured part).
    Visitors take turns (each writes every N / rate seconds, within the
    per-visitor limit); replies go to random conversations by random operators."""
    rate, total = params["rate"], params["warmup"] + params["seconds"]
    order = visitors[:]
    rng.shuffle(order)
    writes, replies, reply_to = [], [], {}
    for k in range(int(rate * total)):
        offset = k / rate
        phase = "w" if offset < params["warmup"] else "m"
        writes.append((offset, "v", order[k % len(order)], f"{phase}v{k}"))
        visitor = rng.choice(visitors)
        client_id = f"{phase}r{k}"
        reply_to[client_id] = visitor
        replies.append(
            (offset + 0.5 / rate, "r", rng.randrange(operators), conversation_of[visitor], visitor, client_id)
        )
    return writes, replies, reply_to


def run_traffic(
    pool: Pool,
    *,
    mode: str,
    ws_ports: list[int],
    operator_tokens: list[str],
    widget_key: str,
    reply_path: str,
    params: dict,
    rng: random.Random,
    server_pids: list[int],
    infra: Infra,
    on_ready=None,
    profile: bool = False,
) -> dict:
    """Connect the operators and visitors of ``mode`` (``project`` or
    ``baseline``), run the schedule, and measure every delivery."""
    baseline = mode == "baseline"
    n_ops, n_visitors = len(operator_tokens), params["visitors"]
    host = "127.0.0.1"
    op_specs = []
    for j, token in enumerate(operator_tokens):
        port = ws_ports[j % 2]
        path = f"/ws/bench/relay/?group={OPERATORS_GROUP}" if baseline else "/ws/operator/"
        # The app's HTTP connection lands on either process, like behind a balancer.
        op_specs.append((j, f"ws://{host}:{port}{path}", "" if baseline else token, host, ws_ports[rng.randrange(2)]))
    started = time.monotonic()
    opened = pool.call(
        [("chat_operators", part, {"heartbeat_s": HEARTBEAT_S, "concurrency": 10}) for part in pool.split(op_specs)]
    )
    ops_connected = sum(result["connected"] for result in opened)
    log(f"  {ops_connected}/{n_ops} operator sockets")
    if on_ready is not None:
        on_ready()
    visitor_specs = []
    for i in range(n_visitors):
        port = ws_ports[i % 2]
        path = f"/ws/bench/relay/?group=bench.v{i}" if baseline else f"/ws/widget/{widget_key}/"
        # Baseline visitors need no conversation: the index stands for it.
        visitor_specs.append(
            (i, f"ws://{host}:{port}{path}", host, ws_ports[rng.randrange(2)], None, i if baseline else None)
        )
    opened = pool.call(
        [
            ("chat_visitors", part, {"widget_key": None if baseline else widget_key, "concurrency": 25})
            for part in pool.split(visitor_specs)
        ]
    )
    visitors = [item for result in opened for item in result["visitors"]]
    visitor_failures: Counter = Counter()
    for result in opened:
        visitor_failures.update(result["failures"])
    conversation_of = {index: conversation_id for index, _token, conversation_id in visitors}
    setup_s = time.monotonic() - started
    log(
        f"  {len(visitors)}/{n_visitors} visitors with a conversation and a socket in {setup_s:.0f} s "
        f"{dict(visitor_failures) or ''}"
    )
    time.sleep(1.0)  # the last identify frames reach the servers

    writes, replies, reply_to = schedule_traffic(
        visitors=sorted(conversation_of), conversation_of=conversation_of, operators=n_ops, params=params, rng=rng
    )
    parts = [[] for _ in range(len(pool))]
    for item in writes:
        parts[item[2] % len(pool)].append(item)  # the worker that holds the visitor (Pool.split deals round-robin)
    for item in replies:
        parts[item[2] % len(pool)].append(item)  # the worker that holds the operator
    for part in parts:
        part.sort(key=lambda item: item[0])
    options = {
        "mode": mode,
        "widget_key": widget_key,
        "reply_path": reply_path,
        "operators_group": OPERATORS_GROUP,
    }
    writes_before = db_writes(infra)
    cpu_before = [cpu_seconds(pid) for pid in server_pids]
    client_cpu_before = [cpu_seconds(pid) for pid in pool.pids]
    load_before = os.getloadavg()
    start = time.monotonic() + 1.0
    spies = py_spy(server_pids, delay=params["warmup"] + 1.0, seconds=params["seconds"], name=mode) if profile else []
    log(f"  {params['warmup']:.0f} s warm-up + {params['seconds']:.0f} s measured, {params['rate']}/s each way")
    with Sampler(infra.db) as sampler:
        ran = pool.call([("chat_run", part, start, options) for part in parts])
    elapsed = time.monotonic() - start
    frames_settled(pool)
    load_after = os.getloadavg()
    server_cpu_s = [cpu_seconds(pid) - c for pid, c in zip(server_pids, cpu_before, strict=True)]
    server_cpu = [round(100 * seconds / elapsed, 1) for seconds in server_cpu_s]
    client_cpu = [
        round(100 * (cpu_seconds(pid) - c) / elapsed, 1) for pid, c in zip(pool.pids, client_cpu_before, strict=True)
    ]
    writes_after = db_writes(infra)
    for spy in spies:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)
    reports = pool.each("chat_report")
    pool.each("close")
    result = deliveries(reports, reply_to=reply_to, operators=ops_connected)
    messages = len(writes) + len(replies)
    result.update(
        {
            "mode": mode,
            "operators_connected": ops_connected,
            "visitors_connected": len(visitors),
            "visitor_failures": dict(visitor_failures),
            "setup_seconds": round(setup_s, 1),
            "late_sends": sum(item["late"] for item in ran),
            "server_cpu_percent": server_cpu,
            # Web processes' CPU (user + system) per message sent, both ways, warm-up included:
            # what this machine's load moves least.
            "server_cpu_ms_per_message": round(1000 * sum(server_cpu_s) / (len(writes) + len(replies)), 2),
            "client_cpu_percent": client_cpu,
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in load_after],
            **sampler.summary(),
            "db_per_message": {
                key: round((writes_after[key] - writes_before[key]) / messages, 2)
                for key in ("xact_commit", "inserted", "updated", "deleted")
            }
            if writes_before and writes_after
            else None,
        }
    )
    return result


def frames_settled(pool, *, quiet: float = 3.0, cap: float = 90.0) -> float:
    """Wait for the frames still on their way: until no socket received one for
    ``quiet`` seconds (at most ``cap``). A frame that comes later than that is
    counted lost; one that comes late but within it, late. Returns the wait."""
    began = last_change = time.monotonic()
    seen = -1
    while time.monotonic() - began < cap:
        count = sum(pool.each("chat_count"))
        if count != seen:
            seen, last_change = count, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
        time.sleep(0.5)  # polling the client processes' counters: no event crosses them
    return time.monotonic() - began


def deliveries(reports: list[dict], *, reply_to: dict[str, int], operators: int) -> dict:
    """Match every measured send with the frames it caused."""
    sends = {
        client_id: (kind, sent, answered, status)
        for part in reports
        for kind, client_id, sent, answered, status in part["sends"]
    }
    at_operators: list[dict[str, float]] = []
    other_frames: Counter = Counter()
    duplicates = 0
    for part in reports:
        for _index, receipts, counts in part["operators"]:
            first: dict[str, float] = {}
            for client_id, received in receipts:
                if client_id in first:
                    duplicates += 1
                first.setdefault(client_id, received)
            at_operators.append(first)
            other_frames.update(counts)
    at_visitor: dict[int, dict[str, float]] = {}
    for part in reports:
        for index, receipts in part["visitors"]:
            first = at_visitor.setdefault(index, {})
            for client_id, author, _kind, received, _wall in receipts:
                if author == "operator":
                    if client_id in first:
                        duplicates += 1
                    first.setdefault(client_id, received)
    to_operator, to_visitor, http = [], [], {"v": [], "r": []}
    statuses: Counter = Counter()
    lost_to_operator = lost_to_visitor = failed = 0
    for client_id, (kind, sent, answered, status) in sends.items():
        if not client_id.startswith("m"):
            continue
        statuses[f"{kind}:{status}"] += 1
        if status not in (200, 201):
            failed += 1
            continue
        http[kind].append(answered - sent)
        if kind == "v":
            for first in at_operators:
                if client_id in first:
                    to_operator.append(first[client_id] - sent)
                else:
                    lost_to_operator += 1
        else:
            received = at_visitor.get(reply_to[client_id], {}).get(client_id)
            if received is None:
                lost_to_visitor += 1
            else:
                to_visitor.append(received - sent)
    return {
        "visitor_to_operator": latency_stats(to_operator),
        "operator_to_visitor": latency_stats(to_visitor),
        "visitor_post": latency_stats(http["v"]),
        "operator_post": latency_stats(http["r"]),
        "lost_to_operators": lost_to_operator,
        "lost_to_visitors": lost_to_visitor,
        "failed_posts": failed,
        "post_statuses": dict(statuses),
        "duplicate_frames": duplicates,
        "other_operator_frames": dict(other_frames),
        "operators_expected_per_message": operators,
    }


def py_spy(pids: list[int], *, delay: float, seconds: float, name: str) -> list[subprocess.Popen]:
    """Sample the servers for the measured part (``--py-spy``): collapsed stacks in the logs folder."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(binary).exists():
        log("  py-spy not installed: no profile")
        return []
    spies = []
    for pid in pids:
        out = LOGS / f"conversations-{name}-{pid}.txt"
        command = (
            f"sleep {delay:.1f}; exec {binary} record --pid {pid} --duration {int(seconds)} --rate 200 "
            f"--format raw --threads --output {out} --nonblocking"
        )
        spies.append(subprocess.Popen(["sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return spies


# --- SQL per visitor message ----------------------------------------------------------------

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statements(queries) -> int:
    """Statements that read or write (Django also logs BEGIN and COMMIT: not counted)."""
    return sum(1 for query in queries.captured_queries if not query["sql"].upper().startswith(TRANSACTION_CONTROL))


def sql_per_message(*, widget_key: str, account_id: int, samples: int, reply_path: str, operator_token: str) -> dict:
    """Statements of the whole widget request (middleware, rate limits, view,
    service) and of the service alone, counted in this process (BEGIN and
    COMMIT, which Django logs too, are not counted; the examples show them);
    the same for an operator's reply (``reply_path``, an agent's token)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from conversations import services
    from conversations.models import Conversation

    client = Client(HTTP_HOST="127.0.0.1")
    visitors = max(1, samples // 2)
    start_counts, message_counts, service_counts, reply_counts = [], [], [], []
    statuses: Counter = Counter()
    first_sql: list[str] = []
    service_sql: list[str] = []
    reply_sql: list[str] = []
    for k in range(visitors):
        address = f"10.77.{k // 250}.{k % 250 + 1}"
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(
                f"/widget/v1/{widget_key}/conversations",
                data=json.dumps({"body": "Hi", "client_id": f"sql-start-{k}"}),
                content_type="application/json",
                REMOTE_ADDR=address,
            )
        statuses[answer.status_code] += 1
        start_counts.append(statements(queries))
        token, conversation_id = answer.json()["visitor_token"], answer.json()["conversation"]["id"]
        for m in range(2):
            with CaptureQueriesContext(connection) as queries:
                answer = client.post(
                    f"/widget/v1/{widget_key}/conversations/{conversation_id}/messages",
                    data=json.dumps({"body": "And?", "client_id": f"sql-{k}-{m}"}),
                    content_type="application/json",
                    headers={"X-Visitor-Token": token},
                    REMOTE_ADDR=address,
                )
            statuses[answer.status_code] += 1
            message_counts.append(statements(queries))
            if not first_sql:
                first_sql = [query["sql"][:300] for query in queries.captured_queries]
        conversation = Conversation.objects.get(id=conversation_id)
        with CaptureQueriesContext(connection) as queries:
            services.visitor_message_post(
                account_id=account_id,
                visitor_id=conversation.visitor_id,
                conversation_id=conversation_id,
                body="Service alone",
                client_id=f"sql-service-{k}",
            )
        service_counts.append(statements(queries))
        if not service_sql:
            service_sql = [query["sql"][:300] for query in queries.captured_queries]
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(
                reply_path.format(id=conversation_id),
                data=json.dumps({"body": "Hello!", "client_id": f"sql-reply-{k}"}),
                content_type="application/json",
                headers={"Authorization": f"Token {operator_token}"},
            )
        statuses[f"reply {answer.status_code}"] += 1
        reply_counts.append(statements(queries))
        if not reply_sql:
            reply_sql = [query["sql"][:300] for query in queries.captured_queries]

    def summary(counts: list[int]) -> dict:
        return {"mean": round(sum(counts) / len(counts), 2), "min": min(counts), "max": max(counts), "n": len(counts)}

    return {
        "request": summary(message_counts),
        "service": summary(service_counts),
        "conversation_start_request": summary(start_counts),
        "statuses": dict(statuses),
        "request_sql_example": first_sql,
        "service_sql_example": service_sql,
        "operator_reply_request": summary(reply_counts),
        "operator_reply_sql_example": reply_sql,
    }


# --- busy timers --------------------------------------------------------------------------------


def operators_online(operators: list, *, account_id: int) -> str | None:
    """Switch the operators online (with their sockets open, they are present)
    through the status service, as their apps would; the chat box's status.
    Needed after a phase without them: the sweep marks an operator who was
    online and absent past the grace period offline."""
    from accounts.models import Status
    from presence import services as presence_services
    from presence.models import Source

    for operator in operators:
        operator.refresh_from_db(fields=["status", "status_changed_at"])
        presence_services.operator_set_status(operator=operator, status=Status.ONLINE, source=Source.API)
    presence_services.chat_box_refresh(account_id=account_id)
    box = presence_services.chat_box_read(account_id=account_id)
    return box and box["status"]


def busy_phase(
    pool: Pool,
    *,
    account,
    operator,
    operator_token: str,
    ws_ports: list[int],
    params: dict,
    worker: Server,
    profile: bool,
) -> dict:
    from django.utils import timezone

    from conversations import services
    from conversations.models import Conversation, Message, Visitor
    from widget.visitors import visitor_token_digest, visitor_token_new

    n, delay = params["busy"], params["delay"]
    host = "127.0.0.1"
    tokens = [visitor_token_new() for _ in range(n)]
    visitors = Visitor.objects.bulk_create(
        [Visitor(account=account, token_hash=visitor_token_digest(token)) for token in tokens]
    )
    conversations = Conversation.objects.bulk_create(
        [Conversation(account=account, visitor=visitor, last_seq=0) for visitor in visitors]
    )
    opened = pool.call(
        [
            ("chat_operators", part, {"heartbeat_s": HEARTBEAT_S})
            for part in pool.split([(0, f"ws://{host}:{ws_ports[0]}/ws/operator/", operator_token, host, ws_ports[0])])
        ]
    )
    op_connected = sum(result["connected"] for result in opened)
    box = {"status": operators_online([operator], account_id=account.id)}
    specs = [
        (
            i,
            f"ws://{host}:{ws_ports[i % 2]}/ws/widget/{account.widget_key}/",
            host,
            ws_ports[i % 2],
            tokens[i],
            conversations[i].id,
        )
        for i in range(n)
    ]
    opened = pool.call([("chat_visitors", part, {"concurrency": 25}) for part in pool.split(specs)])
    connected = sum(result["connected"] for result in opened)
    log(
        f"  {connected}/{n} busy visitors on widget sockets, operator sockets {op_connected}, "
        f"chat box {box and box['status']}"
    )
    time.sleep(1.0)  # the identify frames reach the servers

    moment = timezone.now()
    due = moment + services.busy_after(account.busy_after_seconds)
    seeding = time.monotonic()
    for visitor, conversation in zip(visitors, conversations, strict=True):
        services.visitor_message_post(
            account_id=account.id,
            visitor_id=visitor.id,
            conversation_id=conversation.id,
            body="Is anyone there?",
            client_id=f"busy-{conversation.id}",
            now=moment,
        )
    seed_s = time.monotonic() - seeding
    log(f"  {n} visitor messages at one moment (written in {seed_s:.1f} s); busy timers due in {delay} s")
    worker_cpu_before = process_tree_cpu(worker.pid)
    spies = []
    if profile:
        spies = py_spy(
            [int(child) for child in Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()],
            delay=max(0.0, (due - timezone.now()).total_seconds() - 0.5),
            seconds=12,
            name="busy-worker",
        )
    ids = [conversation.id for conversation in conversations]
    busy = Message.objects.filter(conversation_id__in=ids, kind=Message.Kind.BUSY)
    deadline = due.timestamp() + 30
    while time.time() < deadline and busy.count() < n:
        time.sleep(0.25)
    all_sent_s = time.time() - due.timestamp()
    worker_cpu = process_tree_cpu(worker.pid) - worker_cpu_before
    time.sleep(3.0)  # beat keeps firing every second: time for a duplicate to show
    per_conversation = Counter(busy.values_list("conversation_id", flat=True))
    created = list(busy.values_list("created_at", flat=True))
    reports = pool.each("chat_report")
    pool.each("close")
    for spy in spies:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)
    frames: dict[int, list[float]] = {}
    for part in reports:
        for index, receipts in part["visitors"]:
            frames[index] = [wall for _cid, _author, kind, _t, wall in receipts if kind == "busy"]
    operator_busy = sum(
        counts.get("message_system", 0) for part in reports for _index, _receipts, counts in part["operators"]
    )
    due_ts = due.timestamp()
    lateness = [min(walls) - due_ts for walls in frames.values() if walls]
    fired = [created_at.timestamp() - due_ts for created_at in created]
    return {
        "conversations": n,
        "delay_s": delay,
        "visitor_sockets": connected,
        "box": box and box["status"],
        "seed_seconds": round(seed_s, 2),
        "busy_messages": sum(per_conversation.values()),
        "conversations_with_one": sum(1 for c in per_conversation.values() if c == 1),
        "conversations_without": n - len(per_conversation),
        "duplicates_db": sum(c - 1 for c in per_conversation.values() if c > 1),
        "duplicates_sockets": sum(len(walls) - 1 for walls in frames.values() if len(walls) > 1),
        "sockets_with_busy": sum(1 for walls in frames.values() if walls),
        "operator_frames": operator_busy,
        "lateness_at_socket_s": {
            "p50": round(_pct(lateness, 50), 3),
            "p99": round(_pct(lateness, 99), 3),
            "max": round(max(lateness), 3) if lateness else None,
            "min": round(min(lateness), 3) if lateness else None,
        },
        # The firing task's "now" (the created_at of the busy message) after the due time.
        "fired_after_due_s": {
            "min": round(min(fired), 3) if fired else None,
            "max": round(max(fired), 3) if fired else None,
        },
        "all_in_db_after_due_s": round(all_sent_s, 2),
        "worker_cpu_s": round(worker_cpu, 2),
    }


def number(value: float | None) -> float | None:
    """None for a figure that could not be measured (nothing arrived: NaN)."""
    return None if value is None or value != value else value


def _pct(values: list[float], q: float) -> float:
    from bench.common import percentile

    return percentile(sorted(values), q) if values else float("nan")


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--py-spy", action="store_true", help="profile the servers while measuring (py-spy in the venv)")
    cli.add_argument("--rate", type=int, help="visitor messages and operator replies a second, each")
    cli.add_argument("--seconds", type=float, help="measured seconds")
    args = cli.parse_args()
    params = dict(QUICK if args.quick else FULL)
    if args.rate:
        params["rate"] = args.rate
    if args.seconds:
        params["seconds"] = args.seconds
    raise_nofile()
    rng = random.Random(20261125)
    report = Report("conversations", args.quick)
    with Infra("conversations") as infra:
        infra.django()
        from accounts import services as account_services
        from accounts.auth import token_create
        from accounts.models import Operator, Status

        rest = rest_reply_available()
        timers_scheduled = beat_schedules_timers()
        reply_path = API_REPLY_PATH if rest else BENCH_REPLY_PATH
        log(
            "operator replies: "
            + (
                "POST /api/v1/conversations/{id}/messages (the project's REST API)"
                if rest
                else "bench-only view POST /bench/v1/conversations/{id}/messages (token lookup + "
                "operator_message_post; the REST endpoint is not in api/urls.py yet)"
            )
        )
        log(
            "celery beat: "
            + (
                "chatstatus.celery schedules timers_fire"
                if timers_scheduled
                else "chatstatus.celery does NOT schedule conversations.tasks.timers_fire: "
                "the bench's beat adds it (every 1 s)"
            )
        )

        log(f"creating 2 accounts: {params['operators']} operators; 1 operator for the busy timers")
        account, owner = account_services.account_create(name="Chat bench", email="chat@bench.example", password=None)
        operators = [owner] + [
            account_services.operator_create(account=account, email=f"chat-{i}@bench.example", display_name=f"Op {i}")
            for i in range(1, params["operators"])
        ]
        # No busy message during the traffic: the longest delay an account may set.
        account_services.account_update(account=account, busy_after_seconds=600)
        busy_account, busy_owner = account_services.account_create(
            name="Busy bench", email="busy@bench.example", password=None
        )
        account_services.account_update(account=busy_account, busy_after_seconds=params["delay"])
        Operator.objects.filter(account__in=[account, busy_account]).update(status=Status.ONLINE)
        tokens = [token_create(operator=op, device="bench")[0] for op in operators]
        busy_token = token_create(operator=busy_owner, device="bench")[0]

        log("starting a Celery worker and beat, 2 project and 2 baseline Daphne processes")
        worker, beat = start_celery(infra, timers_scheduled=timers_scheduled)
        # The project's application, with the bench's reply path (when the API
        # has none) and the operators' reply limit raised (see ``__getattr__``).
        app = "bench.conversations:application"
        servers = infra.daphnes(
            [{"name": f"web{i}", "app": app} for i in range(2)]
            + [
                {"name": f"baseline{i}", "app": "bench.baseline_app:application", "settings": "bench.baseline_settings"}
                for i in range(2)
            ]
        )
        web, base = servers[:2], servers[2:]
        floor = relay_with_writes(infra, visitors=params["visitors"])
        wait_for_log(worker, " ready.")
        wait_for_log(worker, f"Task {TIMERS_TASK}[", timeout=60)
        log("worker ready; beat sends timers_fire")

        box_status: list[str | None] = []

        def box_online() -> None:
            box_status.append(operators_online(operators, account_id=account.id))
            log(f"  chat box {box_status[-1]}")

        with Pool(2, main=chat_worker_main) as pool:
            # The baseline first: a project that fell behind goes on working
            # through its backlog after its clients gave up.
            def relay_traffic(servers: list[Server]) -> dict:
                """The traffic through relay processes (the baseline's, or the floor's)."""
                return run_traffic(
                    pool,
                    mode="baseline",
                    ws_ports=[server.port for server in servers],
                    operator_tokens=tokens,
                    widget_key="",
                    reply_path="",
                    params=params,
                    rng=rng,
                    server_pids=[server.pid for server in servers],
                    infra=infra,
                )

            log("baseline: the same traffic through a bare Channels relay")
            baseline = relay_traffic(base)
            log("floor: the relay, each message stored first (three statements, no ORM)")
            floor_result = {**relay_traffic(floor), "mode": "floor"}
            for server in floor:
                server.stop()
                infra.servers.remove(server)
            log(f"project: {params['visitors']} visitors, {params['operators']} operators")
            project = run_traffic(
                pool,
                mode="project",
                ws_ports=[server.port for server in web],
                operator_tokens=tokens,
                widget_key=account.widget_key,
                reply_path=reply_path,
                params=params,
                rng=rng,
                server_pids=[server.pid for server in web],
                infra=infra,
                on_ready=box_online,
                profile=args.py_spy,
            )
            # Fresh web processes for the timers: nothing left over from the traffic.
            for server in web + base:
                server.kill()
                server.stop()
                infra.servers.remove(server)
            web = infra.daphnes([{"name": f"web{i}b", "app": app} for i in range(2)])
            log(f"SQL per visitor message: {SQL_SAMPLE} sampled requests in this process")
            sql = sql_per_message(
                widget_key=account.widget_key,
                account_id=account.id,
                samples=SQL_SAMPLE,
                reply_path=reply_path,
                operator_token=tokens[1 % len(tokens)],  # an agent: rule 6 is checked for them
            )
            log(f"busy timers: {params['busy']} conversations due at the same moment")
            busy = busy_phase(
                pool,
                account=busy_account,
                operator=busy_owner,
                operator_token=busy_token,
                ws_ports=[server.port for server in web],
                params=params,
                worker=worker,
                profile=args.py_spy,
            )
        report.details = {
            "params": params,
            "operator_replies_via": reply_path,
            "beat_schedules_timers": timers_scheduled,
            "project": project,
            "baseline": baseline,
            "floor": floor_result,
            "sql": sql,
            "busy": busy,
        }

        rows = []
        for result in (project, baseline, floor_result):
            for label, key in (
                ("visitor → operator", "visitor_to_operator"),
                ("operator → visitor", "operator_to_visitor"),
            ):
                stats = result[key]
                rows.append([result["mode"], label, stats["count"], stats["p50_ms"], stats["p99_ms"], stats["max_ms"]])
            rows.append(
                [
                    result["mode"],
                    "POST (visitor; reply)",
                    result["visitor_post"]["count"],
                    f"{result['visitor_post']['p50_ms']}; {result['operator_post']['p50_ms']}",
                    f"{result['visitor_post']['p99_ms']}; {result['operator_post']['p99_ms']}",
                    f"{result['visitor_post']['max_ms']}; {result['operator_post']['max_ms']}",
                ]
            )
        print()
        print(table(["system", "path", "deliveries", "p50 ms", "p99 ms", "max ms"], rows))
        print(
            f"\nproject: server CPU {project['server_cpu_percent']} %, clients {project['client_cpu_percent']} %, "
            f"1-min load during the run {project['loadavg_1min_mean']} (max {project['loadavg_1min_max']}), "
            f"database connections max {project['db_connections_max']}, posts {project['post_statuses']}\n"
            f"baseline: server CPU {baseline['server_cpu_percent']} %, "
            f"1-min load during the run {baseline['loadavg_1min_mean']} (max {baseline['loadavg_1min_max']})\n"
            f"floor: server CPU {floor_result['server_cpu_percent']} %, "
            f"1-min load during the run {floor_result['loadavg_1min_mean']} (max {floor_result['loadavg_1min_max']}), "
            f"posts {floor_result['post_statuses']}"
        )
        print(
            f"SQL statements per visitor message: request {sql['request']}, service {sql['service']}; "
            f"per operator reply (request) {sql['operator_reply_request']}"
        )
        print(f"busy: {json.dumps(busy)}")

        for key, label in (
            ("visitor_to_operator", "visitor → operator"),
            ("operator_to_visitor", "operator → visitor"),
        ):
            report.figure(
                f"{label} p50", number(project[key]["p50_ms"]), "ms", baseline=number(baseline[key]["p50_ms"])
            )
            report.figure(
                f"{label} p99",
                number(project[key]["p99_ms"]),
                "ms",
                target=f"≤ {TARGET_P99_MS:.0f} ms",
                met=project[key]["p99_ms"] <= TARGET_P99_MS,
                baseline=number(baseline[key]["p99_ms"]),
            )
            report.figure(f"floor (relay + the writes): {label} p99", number(floor_result[key]["p99_ms"]), "ms")
        report.figure("floor (relay + the writes): CPU per message", floor_result["server_cpu_ms_per_message"], "ms")
        report.figure(
            "web processes' CPU per message",
            project["server_cpu_ms_per_message"],
            "ms",
            baseline=baseline["server_cpu_ms_per_message"],
        )
        lost = project["lost_to_operators"] + project["lost_to_visitors"]
        answered = sum(n for key, n in project["post_statuses"].items() if key.endswith((":200", ":201")))
        report.figure(
            "measured requests answered (2xx)",
            f"{answered:,} of {sum(project['post_statuses'].values()):,}",
            baseline=f"{sum(n for k, n in baseline['post_statuses'].items() if k.endswith((':200', ':201'))):,}",
        )
        report.figure(
            "messages lost (frames missing; failed posts)",
            f"{lost}; {project['failed_posts']}",
            target="0",
            met=lost == 0 and project["failed_posts"] == 0,
            baseline=f"{baseline['lost_to_operators'] + baseline['lost_to_visitors']}; {baseline['failed_posts']}",
        )
        report.figure(
            "SQL statements per visitor message (whole request)",
            sql["request"]["mean"],
            target=f"≤ {TARGET_QUERIES}",
            met=sql["request"]["max"] <= TARGET_QUERIES,
        )
        report.figure(
            "SQL statements per visitor message (service alone)",
            sql["service"]["mean"],
            target=f"≤ {TARGET_QUERIES}",
            met=sql["service"]["max"] <= TARGET_QUERIES,
        )
        lateness = busy["lateness_at_socket_s"]
        report.figure(
            f"busy message max lateness, {busy['conversations']:,} timers due together",
            lateness["max"],
            "s",
            target=f"≤ {TARGET_BUSY_LATENESS_S:.0f} s",
            met=lateness["max"] is not None and lateness["max"] <= TARGET_BUSY_LATENESS_S,
        )
        duplicates = busy["duplicates_db"] + busy["duplicates_sockets"]
        report.figure("busy message duplicates", duplicates, target="0", met=duplicates == 0)

        report.check(
            "every operator and visitor socket connected",
            project["operators_connected"] == params["operators"]
            and project["visitors_connected"] == params["visitors"],
        )
        report.check(
            "the chat boxes online (no offline message instead)",
            box_status[-1:] == ["online"] and busy["box"] == "online",
        )
        report.check("every visitor message and reply accepted (2xx)", project["failed_posts"] == 0)
        report.check("no message lost (every frame at every socket)", lost == 0)
        report.check(
            f"visitor → operator p99 ≤ {TARGET_P99_MS:.0f} ms",
            project["visitor_to_operator"]["p99_ms"] <= TARGET_P99_MS,
        )
        report.check(
            f"operator → visitor p99 ≤ {TARGET_P99_MS:.0f} ms",
            project["operator_to_visitor"]["p99_ms"] <= TARGET_P99_MS,
        )
        report.check(f"SQL statements per visitor message ≤ {TARGET_QUERIES}", sql["request"]["max"] <= TARGET_QUERIES)
        report.check(
            "every busy conversation got exactly one busy message",
            busy["conversations_with_one"] == busy["conversations"]
            and busy["sockets_with_busy"] == busy["visitor_sockets"],
        )
        report.check("no duplicate busy message", duplicates == 0)
        report.check(
            f"every busy message within {TARGET_BUSY_LATENESS_S:.0f} s of its due time",
            lateness["max"] is not None and lateness["max"] <= TARGET_BUSY_LATENESS_S,
        )
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
