"""Idle connections: how many idle widget sockets one Daphne process holds, at
what memory per connection and what CPU while they idle, and whether the
memory comes back when they leave.

Baseline in the same run: a bare Channels consumer on the same pub/sub layer
(``bench/baseline_app.py``, ``/ws/bench/pubsub/``) in its own Daphne process,
so the figure separates what Daphne + Channels cost from what the project adds.

    .venv/bin/python bench/idle.py [--quick]
"""

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import Pool  # noqa: E402
from bench.common import Infra, Report, Server, cpu_seconds, log, parser, raise_nofile, rss_kib, table  # noqa: E402

N = 10_000
QUICK_N = 500
CPU_WINDOW_S = 10.0
# The connect phase stops after this long (the figure then says how many got in):
# a slow accept rate must not make one run take many minutes.
CONNECT_CAP_S, QUICK_CONNECT_CAP_S = 150.0, 60.0
TARGET_KIB = 64


def settle_rss(pid: int, *, seconds: float) -> int:
    """RSS after ``seconds`` of quiet (the server reaps closed connections each second)."""
    time.sleep(seconds)
    return rss_kib(pid)


def measure(pool: Pool, server: Server, url: str, *, n: int, cpu_window: float, connect_cap: float) -> dict:
    # Warm the process first (imports, first-use caches, the layer's connections)
    # so the baseline RSS is that of a server that has served.
    pool.call([("listen", part, {"concurrency": 20}) for part in pool.split([(i, url) for i in range(20)])])
    pool.each("close")
    rss_before = settle_rss(server.pid, seconds=3)
    started = time.monotonic()
    opened = pool.call(
        [
            ("listen", part, {"concurrency": 25, "settle_timeout": connect_cap})
            for part in pool.split([(i, url) for i in range(n)])
        ]
    )
    connect_seconds = time.monotonic() - started
    abandoned = sum(pool.each("abandon"))  # still waiting when the connect phase's cap ran out
    connected = sum(result["connected"] for result in opened)
    failures: dict[str, int] = {}
    for result in opened:
        for kind, count in result["failures"].items():
            failures[kind] = failures.get(kind, 0) + count
    rss_connected = settle_rss(server.pid, seconds=3)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(cpu_window)
    idle_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
    held = sum(count["live"] for count in pool.each("count"))
    pool.each("close")
    rss_after = settle_rss(server.pid, seconds=6)
    per_conn = (rss_connected - rss_before) / connected if connected else float("nan")
    return {
        "n": n,
        "connected": connected,
        "held_after_idle": held,
        "connect_failures": failures,
        "abandoned_at_cap": abandoned,
        "connect_seconds": round(connect_seconds, 1),
        "connects_per_s": round(connected / connect_seconds, 1) if connect_seconds else None,
        "rss_before_kib": rss_before,
        "rss_connected_kib": rss_connected,
        "rss_after_disconnect_kib": rss_after,
        "kib_per_connection": round(per_conn, 1),
        "idle_cpu_percent": round(idle_cpu * 100, 2),
        "retained_after_disconnect_kib": rss_after - rss_before,
    }


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    n = QUICK_N if args.quick else N
    cpu_window = 3.0 if args.quick else CPU_WINDOW_S
    connect_cap = QUICK_CONNECT_CAP_S if args.quick else CONNECT_CAP_S
    raise_nofile()
    report = Report("idle", args.quick)
    with Infra("idle") as infra:
        infra.django()
        from accounts import services as account_services
        from presence import services

        account, _owner = account_services.account_create(name="Idle bench", email="idle@bench.example", password=None)
        services.chat_box_refresh(account_id=account.id)
        web, base = infra.daphnes(
            [
                {"name": "web"},
                {"name": "baseline", "app": "bench.baseline_app:application", "settings": "bench.baseline_settings"},
            ]
        )
        with Pool(2) as pool:
            log(f"project: {n} idle widget sockets on one Daphne")
            url = f"ws://127.0.0.1:{web.port}/ws/widget/{account.widget_key}/"
            project = measure(pool, web, url, n=n, cpu_window=cpu_window, connect_cap=connect_cap)
            log(f"baseline: {n} idle sockets on a bare consumer")
            url = f"ws://127.0.0.1:{base.port}/ws/bench/pubsub/"
            baseline = measure(pool, base, url, n=n, cpu_window=cpu_window, connect_cap=connect_cap)
        report.details = {"project": project, "baseline": baseline}
        rows = [
            [
                name,
                r["connected"],
                r["held_after_idle"],
                r["connects_per_s"],
                r["rss_before_kib"] // 1024,
                r["rss_connected_kib"] // 1024,
                r["kib_per_connection"],
                r["idle_cpu_percent"],
                r["rss_after_disconnect_kib"] // 1024,
            ]
            for name, r in (("project", project), ("baseline", baseline))
        ]
        print()
        print(
            table(
                [
                    "system",
                    "connected",
                    "held",
                    "conn/s",
                    "RSS0 MiB",
                    "RSS MiB",
                    "KiB/conn",
                    "idle CPU %",
                    "RSS after MiB",
                ],
                rows,
            )
        )
        report.figure(
            "idle widget sockets held by one process",
            project["held_after_idle"],
            target=f"≥ {N:,}",
            met=project["held_after_idle"] >= N if not args.quick else None,
            baseline=baseline["held_after_idle"],
        )
        report.figure(
            "memory per connection",
            project["kib_per_connection"],
            "KiB",
            target=f"≤ {TARGET_KIB} KiB",
            met=project["kib_per_connection"] <= TARGET_KIB,
            baseline=baseline["kib_per_connection"],
        )
        report.figure(
            f"idle CPU with {n:,} sockets",
            project["idle_cpu_percent"],
            "% of a core",
            baseline=baseline["idle_cpu_percent"],
        )
        grown = project["rss_connected_kib"] - project["rss_before_kib"]
        kept = project["retained_after_disconnect_kib"]
        report.figure(
            "RSS kept after all disconnect",
            round(100 * kept / grown, 1) if grown > 0 else None,
            "% of growth",
            baseline=round(
                100
                * baseline["retained_after_disconnect_kib"]
                / max(1, baseline["rss_connected_kib"] - baseline["rss_before_kib"]),
                1,
            ),
        )
        report.check("every socket connected", project["connected"] == n)
        report.check("every socket still open after the idle window", project["held_after_idle"] == n)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
