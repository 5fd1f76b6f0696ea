"""Plumbing shared by the benchmarks.

Every benchmark runs on infrastructure of its own: a ``redis-server`` on a free
port and a PostgreSQL database ``bench_<pid>``, both removed at the end, so a
run never touches the shared Redis on 6379 or the test database. Daphne
processes are started exactly as ``tests/live.py`` starts them.
"""

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = RESULTS / "logs"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Long enough for the settings' check; never used outside a benchmark.
BENCH_SECRET = "bench-secret-key-" + "0123456789abcdef" * 4
TEMPLATE_ENV = "BENCH_TEMPLATE_DB"


# --- processes and ports ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, *, timeout: float = 90, proc: subprocess.Popen | None = None, every: float = 0.05
) -> float:
    """Block until something accepts on ``port``; returns that moment (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        if port_open(port):
            return time.monotonic()
        time.sleep(every)  # a port that is not open yet has no event to wait on
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def raise_nofile(want: int = 1 << 20) -> int:
    """Raise this process's open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine() -> dict:
    load = os.getloadavg()
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": [round(value, 2) for value in load],
        "loaded": load[0] > 0.5 * (os.cpu_count() or 1),
    }


class Server:
    """A child process with its output in ``bench/results/logs/NAME.log``."""

    def __init__(self, args: list[str], *, env: dict[str, str], name: str, port: int | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.args, self.env, self.name, self.port = args, env, name, port
        self.log_path = LOGS / f"{name}.log"
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_listening(self, timeout: float = 90, every: float = 0.05) -> float:
        assert self.port is not None
        return wait_for_port(self.port, timeout=timeout, proc=self.proc, every=every)

    def kill(self) -> None:
        """SIGKILL: no chance to close anything, like a crash or an OOM kill."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


def daphne_args(port: int, app: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "daphne",
        "-v",  # as deploy/Procfile runs it: no access log line per request
        "0",
        "-e",
        f"tcp:port={port}:interface=127.0.0.1:backlog=2048",
        "--websocket-max-message-size",
        "65536",
        app,
    ]


# --- the benchmark's own Redis and database ---------------------------------------------


class Infra:
    """Own ``redis-server`` and own database for one benchmark run.

    With ``BENCH_TEMPLATE_DB`` set (``run_all`` migrates one template for
    the whole run) the database is cloned from it instead of migrated.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = os.getpid()
        self.db = f"bench_{self.pid}"
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.prefix = f"bench{self.pid}"
        self.servers: list[Server] = []
        self.redis: subprocess.Popen | None = None
        self.db_created = False
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "DJANGO_", "DATABASE_URL", "REDIS_"))
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="chatstatus.settings",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{self.db}",
            REDIS_URL=self.redis_url,
            REDIS_PREFIX=self.prefix,
            SECRET_KEY=BENCH_SECRET,
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="WARNING",
        )
        self.env.pop("DEBUG", None)

    def __enter__(self) -> "Infra":
        LOGS.mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            self._create_db()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_redis(self) -> None:
        log = (LOGS / f"{self.name}-redis.log").open("a")
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxclients",
                "50000",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.redis_port, timeout=30, proc=self.redis)

    def _create_db(self) -> None:
        template = os.environ.get(TEMPLATE_ENV)
        args = ["createdb", *PG, *(["-T", template] if template else []), self.db]
        subprocess.run(args, check=True)
        self.db_created = True
        if not template:
            migrate(self.env)

    def django(self) -> None:
        """Point this process's Django at the benchmark's Redis and database."""
        os.environ.update(
            {
                key: self.env[key]
                for key in (
                    "DJANGO_SETTINGS_MODULE",
                    "DATABASE_URL",
                    "REDIS_URL",
                    "REDIS_PREFIX",
                    "SECRET_KEY",
                    "LOG_LEVEL",
                )
            }
        )
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        import django

        django.setup()

    def daphne(
        self,
        name: str,
        *,
        app: str = "chatstatus.asgi:application",
        port: int | None = None,
        settings: str | None = None,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Server:
        port = port or free_port()
        env = {**self.env, **(env or {})}
        if settings:
            env["DJANGO_SETTINGS_MODULE"] = settings
        server = Server(daphne_args(port, app), env=env, name=f"{self.name}-{name}-{port}", port=port)
        self.servers.append(server)
        if wait:
            server.wait_listening()
        return server

    def daphnes(self, specs: list[dict]) -> list[Server]:
        """Start several Daphne processes at once (each dict: ``daphne()``'s
        keyword arguments) and wait until all listen: start-up is seconds of
        imports each, better spent in parallel."""
        servers = [self.daphne(**spec, wait=False) for spec in specs]
        for server in servers:
            server.wait_listening()
        return servers

    def db_writes(self) -> dict:
        """Rows written to the benchmark database so far (statistics collector)."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={self.db}", autocommit=True) as conn:
            ins, upd, dele = conn.execute(
                "SELECT coalesce(sum(n_tup_ins),0), coalesce(sum(n_tup_upd),0), coalesce(sum(n_tup_del),0) "
                "FROM pg_stat_user_tables"
            ).fetchone()
            commits = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [self.db]).fetchone()[
                0
            ]
        return {"inserted": int(ins), "updated": int(upd), "deleted": int(dele), "xact_commit": int(commits)}

    def close(self) -> None:
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                server.stop()
        self.servers.clear()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if self.db_created:
            subprocess.run(["dropdb", *PG, "--force", "--if-exists", self.db], check=False)
            self.db_created = False
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.redis.wait(timeout=10)
            if self.redis.poll() is None:
                self.redis.kill()


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


@contextlib.contextmanager
def template_db() -> Iterator[str]:
    """A migrated database that the benchmarks of one run clone (``createdb -T``)."""
    name = f"bench_tpl_{os.getpid()}"
    subprocess.run(["createdb", *PG, name], check=True)
    try:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="chatstatus.settings",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
            REDIS_URL="redis://127.0.0.1:1/0",
            SECRET_KEY=BENCH_SECRET,
            LOG_LEVEL="WARNING",
        )
        migrate(env)
        yield name
    finally:
        subprocess.run(["dropdb", *PG, "--force", "--if-exists", name], check=False)


# --- statistics and results -------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0–100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def latency_stats(values_s: Iterable[float]) -> dict:
    """p50/p90/p99/max in milliseconds of values in seconds."""
    ordered = sorted(values_s)
    ms = [value * 1000 for value in ordered]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(ms[-1], 2) if ms else float("nan"),
    }


@dataclass
class Figure:
    """One headline figure of a benchmark, compared with its target."""

    benchmark: str
    figure: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    baseline: float | int | str | None = None
    # "lower" or "higher" (what is better); None: inferred (``direction``).
    better: str | None = None
    # How much a rerun on the same machine moves it (relative): a change within
    # it is not called a regression (``regressed``).
    noise: float = 0.25

    def direction(self) -> str | None:
        if self.better:
            return self.better
        if self.target.startswith("≤") or self.target == "0":
            return "lower"
        if self.target.startswith("≥"):
            return "higher"
        if self.unit in ("ms", "s", "KiB", "MiB"):
            return "lower"
        if self.unit.endswith("/s"):
            return "higher"
        return None

    def row(self) -> list[str]:
        met = "" if self.met is None else ("yes" if self.met else "NO")
        return [
            self.benchmark,
            self.figure,
            fmt(self.value, self.unit),
            self.target,
            met,
            fmt(self.baseline, self.unit),
        ]


def regressed(figure: dict, last: dict | None) -> bool | None:
    """Is ``figure`` (a ``Figure``'s fields) worse than the ``last`` recorded
    one by more than its noise? None when they cannot be compared."""
    if last is None:
        return None
    value, before = figure.get("value"), last.get("value")
    if not isinstance(value, int | float) or not isinstance(before, int | float):
        return None
    better = Figure(**{key: figure[key] for key in Figure.__dataclass_fields__ if key in figure}).direction()
    noise = figure.get("noise", 0.25)
    if better == "lower":
        return value > before * (1 + noise) if before > 0 else value > 0
    if better == "higher":
        return value < before * (1 - noise)
    return None


def fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in headers]] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass
class Report:
    name: str
    quick: bool
    started: float = field(default_factory=time.time)
    figures: list[Figure] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    machine_before: dict = field(default_factory=machine)

    def figure(
        self,
        figure: str,
        value: object,
        unit: str = "",
        *,
        target: str = "",
        met: bool | None = None,
        baseline: object = None,
    ) -> Figure:
        item = Figure(self.name, figure, value, unit, target, met, baseline)
        self.figures.append(item)
        return item

    def check(self, name: str, ok: bool) -> bool:
        self.checks[name] = bool(ok)
        return bool(ok)

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        data = {
            "benchmark": self.name,
            "quick": self.quick,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "machine_before": self.machine_before,
            "machine_after": machine(),
            "summary": [figure.__dict__ for figure in self.figures],
            "checks": self.checks,
            "details": self.details,
        }
        path = RESULTS / f"{self.name}{'-quick' if self.quick else ''}.json"
        path.write_text(json.dumps(data, indent=2, default=str))
        return path

    def print(self) -> None:
        headers = ["benchmark", "figure", "value", "target", "met?", "baseline"]
        print()
        print(table(headers, [figure.row() for figure in self.figures]))
        if self.checks:
            print()
            print(table(["check", "ok?"], [[name, "yes" if ok else "NO"] for name, ok in self.checks.items()]))
        load = machine()["loadavg"]
        print(f"\nload average {load[0]} {load[1]} {load[2]} on {os.cpu_count()} CPUs")

    def finish(self) -> int:
        self.print()
        path = self.write()
        print(f"results: {path.relative_to(ROOT)}")
        # Exit status: 0 even when a target is missed (a figure, not a failure);
        # 2 when a correctness check failed.
        return 0 if all(self.checks.values()) else 2


def parser(description: str) -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument("--quick", action="store_true", help="small N, to try the script")
    return cli


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)
