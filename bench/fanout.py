"""Fan-out latency: one status change → N widget sockets over 2 Daphne processes.

The clock starts just before ``operator_set_status`` is called (in this
process, on the benchmark's database and Redis) and stops when a client
receives the new version. Baseline in the same run: a plain ``channels_redis``
core-layer ``group_send`` to the same number of subscribers of a bare consumer
(``bench/baseline_app.py``), on 2 Daphne processes as well.

    .venv/bin/python bench/fanout.py [--quick]
"""

import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import Pool  # noqa: E402
from bench.common import Infra, Report, cpu_seconds, latency_stats, log, parser, raise_nofile, table  # noqa: E402

SIZES = [100, 1_000, 5_000]
QUICK_SIZES = [50, 300]
TARGETS_P99_MS = {1_000: 150, 5_000: 1_000}


def measure(pool: Pool, *, urls: list[str], n: int, changes: int, make_change) -> dict:
    """Connect ``n`` listeners over ``urls``, make ``changes`` changes, and return
    the latencies from each change to each receipt."""
    specs = [(i, urls[i % len(urls)]) for i in range(n)]
    connect_started = time.monotonic()
    # A moderate number of handshakes in flight per worker: this measures fan-out,
    # not a connection storm (Daphne drops handshakes that take over 5 s).
    opened = pool.call([("listen", part, {"concurrency": 25}) for part in pool.split(specs)])
    connected = sum(result["connected"] for result in opened)
    failures: dict[str, int] = {}
    for result in opened:
        for kind, count in result["failures"].items():
            failures[kind] = failures.get(kind, 0) + count
    connect_seconds = time.monotonic() - connect_started
    marks: list[tuple[float, int]] = []  # (t0, version) per change
    published: list[float] = []  # when the change left the publishing process
    call_ms = []
    for k in range(changes):
        t0, t_publish, version = make_change(k)
        call_ms.append(round((time.monotonic() - t0) * 1000, 1))
        marks.append((t0, version))
        published.append(t_publish)
        reached = sum(pool.each("wait", version, 5.0))
        if reached < connected:
            log(f"  change {k}: only {reached}/{connected} clients got version {version}")
        time.sleep(0.2)  # let the servers go idle: changes are measured one at a time
    reports = [item for part in pool.each("report") for item in part]
    latencies, after_publish, missed, final_ok = [], [], 0, 0
    per_change: list[list[float]] = [[] for _mark in marks]
    last_version = marks[-1][1] if marks else None
    for _index, entries, _events in reports:
        first_receipt: dict[int, float] = {}
        for received, version, _status in entries:
            first_receipt.setdefault(version, received)
        for k, (t0, version) in enumerate(marks):
            if version in first_receipt:
                latencies.append(first_receipt[version] - t0)
                after_publish.append(first_receipt[version] - published[k])
                per_change[k].append(first_receipt[version] - t0)
            else:
                missed += 1
        if entries and max(version for _t, version, _s in entries) == last_version:
            final_ok += 1
    pool.each("close")
    stats = latency_stats(latencies)
    return {
        "n": n,
        "connected": connected,
        "connect_failures": failures,
        "connect_seconds": round(connect_seconds, 2),
        "changes": changes,
        "missed": missed,
        "clients_on_latest_version": final_ok,
        **stats,
        # How long the change itself took (the service call, publish included).
        "change_call_ms": call_ms,
        # From the publish (leaving the publishing process) to receipt: the servers' part.
        "after_publish": latency_stats(after_publish),
        "per_change": [latency_stats(values) for values in per_change],
    }


def main() -> int:
    args = parser(__doc__.splitlines()[0]).parse_args()
    sizes = QUICK_SIZES if args.quick else SIZES
    raise_nofile()
    report = Report("fanout", args.quick)
    with Infra("fanout") as infra:
        infra.django()
        from asgiref.sync import async_to_sync
        from channels_redis.core import RedisChannelLayer

        from accounts import services as account_services
        from accounts.models import Status
        from presence import events, services
        from presence.models import Source
        from presence.selectors import chat_box_snapshot
        from presence.services import status as status_service

        account, owner = account_services.account_create(
            name="Fanout bench", email="fanout@bench.example", password=None
        )

        def keep_present() -> None:
            services.presence_heartbeat(operator=owner, conn_id="bench-fanout", device="bench")

        keep_present()
        services.chat_box_refresh(account_id=account.id)

        real_publish_many = events.publish_many
        snapshot_published = [0.0]

        def timed_publish_many(messages: list) -> None:
            if any(message["type"] == "widget.snapshot" for _group, message in messages):
                snapshot_published[0] = time.monotonic()
            real_publish_many(messages)

        events.publish_many = timed_publish_many  # the services call it through the module
        # Back-to-back measures switch one operator more often than the status
        # limit lets a person (10 in 10 s); the bench measures the fan-out, not the limit.
        status_service.STATUS_CHANGE_LIMIT = 10**9

        def project_change(k: int) -> tuple[float, float, int]:
            keep_present()  # present for the whole run, so only the chosen status flips the box
            status = Status.ONLINE if k % 2 == 0 else Status.OFFLINE
            t0 = time.monotonic()
            assert services.operator_set_status(operator=owner, status=status, source=Source.API)
            snapshot = chat_box_snapshot(account_id=account.id)
            assert snapshot is not None and snapshot["status"] == status, snapshot
            return t0, snapshot_published[0], snapshot["version"]

        core = RedisChannelLayer(hosts=[infra.redis_url], prefix=f"{infra.prefix}:core")
        baseline_version = [0]

        def baseline_change(k: int) -> tuple[float, float, int]:
            baseline_version[0] += 1
            version = baseline_version[0]
            status = Status.ONLINE if k % 2 == 0 else Status.OFFLINE
            text = json.dumps({"type": "status", "status": status, "reason": "bench", "version": version})
            t0 = time.monotonic()
            async_to_sync(core.group_send)("bench", {"type": "bench.push", "text": text})
            return t0, t0, version

        log("starting 2 project and 2 baseline Daphne processes")
        web_and_base = infra.daphnes(
            [{"name": f"web{i}"} for i in range(2)]
            + [
                {"name": f"baseline{i}", "app": "bench.baseline_app:application", "settings": "bench.baseline_settings"}
                for i in range(2)
            ]
        )
        web, base = web_and_base[:2], web_and_base[2:]
        project_urls = [f"ws://127.0.0.1:{server.port}/ws/widget/{account.widget_key}/" for server in web]
        baseline_urls = [f"ws://127.0.0.1:{server.port}/ws/bench/core/" for server in base]
        rows = []
        with Pool(2) as pool:
            for n in sizes:
                changes = 8 if n <= 1_000 else 5
                log(f"N={n}: project")
                cpu0 = [cpu_seconds(server.pid) for server in web]
                project = measure(pool, urls=project_urls, n=n, changes=changes, make_change=project_change)
                project["server_cpu_s"] = [round(cpu_seconds(s.pid) - c, 2) for s, c in zip(web, cpu0, strict=True)]
                log(f"N={n}: baseline (core layer group_send)")
                baseline = measure(pool, urls=baseline_urls, n=n, changes=changes, make_change=baseline_change)
                report.details[f"n{n}"] = {"project": project, "baseline": baseline}
                for name, result in (("project", project), ("baseline", baseline)):
                    rows.append(
                        [
                            n,
                            name,
                            result["connected"],
                            result["p50_ms"],
                            result["p99_ms"],
                            result["max_ms"],
                            result["after_publish"]["p99_ms"],
                            result["missed"],
                            result["clients_on_latest_version"],
                        ]
                    )
                target = TARGETS_P99_MS.get(n)
                report.figure(
                    f"p99 change→client, N={n:,}",
                    project["p99_ms"],
                    "ms",
                    target=f"≤ {target:,} ms" if target else "",
                    met=project["p99_ms"] <= target if target else None,
                    baseline=baseline["p99_ms"],
                )
                report.check(f"N={n}: every client connected", project["connected"] == n)
                report.check(f"N={n}: every client got every change", project["missed"] == 0)
                report.check(
                    f"N={n}: every client ends on the latest version", project["clients_on_latest_version"] == n
                )
        print()
        headers = ["N", "system", "connected", "p50 ms", "p99 ms", "max ms", "p99 after publish", "missed", "on latest"]
        print(table(headers, rows))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
