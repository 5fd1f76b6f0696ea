"""Reconnect storm: N widget clients on one Daphne process; the process is
killed (SIGKILL) and started again on the same port; how long until 99 % of
the clients are back (have received a status again)?

Clients reconnect the way widget.js does: the first retry after a working
socket dropped at a random moment of 0.5–8 s, then 1 s doubling per failure
with ×0.5–1.5 jitter, capped (10 s here). Every status a client receives must be the
true one (the operator stays online and present throughout: no flap).
Connection refusals are split in two: before the new process listens (the
server is not up yet — expected) and after (the listen backlog overflowed).

Baseline in the same run: the same storm against a bare consumer on the same
pub/sub layer (``bench/baseline_app.py``, ``/ws/bench/pubsub/``).

    .venv/bin/python bench/reconnect.py [--quick]
"""

import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.clients import Pool  # noqa: E402
from bench.common import Infra, Report, log, parser, percentile, raise_nofile, table  # noqa: E402

N, QUICK_N = 5_000, 300
BACKOFF_CAP_S = 10.0
# The initial connect phase may take this long; after the kill, clients get
# STORM_CAP_S to come back (those still away are counted, not waited for).
SETTLE_TIMEOUT_S = 180.0
STORM_CAP_S = 90.0


def storm(
    pool: Pool,
    infra: Infra,
    *,
    name: str,
    url_path: str,
    n: int,
    app: str | None,
    settings: str | None,
    true_status: str,
) -> dict:
    kwargs = {"app": app, "settings": settings} if app else {}
    server = infra.daphne(name, **kwargs)
    url = f"ws://127.0.0.1:{server.port}{url_path}"
    # The clients arrive at a moderate pace at first; the storm after the kill is
    # not paced (every client retries on its own schedule, like browsers).
    options = {"reconnect": True, "concurrency": 25, "backoff_cap": BACKOFF_CAP_S, "settle_timeout": SETTLE_TIMEOUT_S}
    opened = pool.call([("listen", part, options) for part in pool.split([(i, url) for i in range(n)])])
    connected = sum(result["connected"] for result in opened)
    log(f"  {connected}/{n} connected in {max(r['seconds'] for r in opened):.1f} s; killing the server")
    pool.each("clear")
    pool.each("gate", n)
    killed_at = time.monotonic()
    server.kill()
    restarted = infra.daphne(f"{name}-restarted", port=server.port, wait=False, **kwargs)
    listening_at = restarted.wait_listening(every=0.01)
    log(f"  listening again after {listening_at - killed_at:.2f} s")
    deadline = killed_at + STORM_CAP_S
    next_log = killed_at + 15
    while time.monotonic() < deadline:
        live = sum(count["live"] for count in pool.each("count"))
        if live >= n:
            break
        if time.monotonic() >= next_log:
            log(f"  {live}/{n} back after {time.monotonic() - killed_at:.0f} s")
            next_log += 15
        time.sleep(0.25)  # polling the workers' counters; there is no cross-process event
    reports = [item for part in pool.each("report") for item in part]
    pool.each("close")
    back_after: list[float] = []
    kinds: Counter = Counter()
    refused_before = refused_after = dropped = 0
    statuses: Counter = Counter()
    for _index, entries, events in reports:
        statuses.update(status for _t, _version, status in entries)
        first = next((at for at, kind in events if kind == "connected" and at > killed_at), None)
        if first is not None:
            back_after.append(first - killed_at)
        for at, kind in events:
            if kind == "refused":
                if at < listening_at:
                    refused_before += 1
                else:
                    refused_after += 1
            elif kind.startswith("closed_") and at < listening_at:
                dropped += 1  # the kill itself (or a close before the server was back)
            elif kind != "connected":
                kinds[kind] += 1
    back_after.sort()
    reconnected = len(back_after)
    t99 = percentile(back_after, 99 * n / reconnected) if reconnected >= 0.99 * n else None
    # How many were back at these moments after the kill (a storm that does not settle shows here).
    back_by = {f"{s}s": sum(1 for t in back_after if t <= s) for s in (5, 10, 20, 30, 60, int(STORM_CAP_S))}
    return {
        "n": n,
        "connected_before": connected,
        "reconnected": reconnected,
        "back_by": back_by,
        "listening_after_s": round(listening_at - killed_at, 2),
        "t50_s": round(percentile(back_after, 50), 2) if back_after else None,
        "t99_s": round(t99, 2) if t99 is not None else None,
        "t99_after_listening_s": round(t99 - (listening_at - killed_at), 2) if t99 is not None else None,
        "max_s": round(back_after[-1], 2) if back_after else None,
        "refused_before_listening": refused_before,
        "refused_after_listening": refused_after,
        "dropped_by_kill": dropped,
        "other_failures": dict(kinds),
        "statuses_seen": dict(statuses),
        "wrong_statuses": sum(count for status, count in statuses.items() if status != true_status),
    }


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--clients", type=int, default=0, help=f"how many clients (default {N:,}, quick {QUICK_N})")
    args = cli.parse_args()
    n = args.clients or (QUICK_N if args.quick else N)
    raise_nofile()
    report = Report("reconnect", args.quick)
    with Infra("reconnect") as infra:
        infra.django()
        from accounts import services as account_services
        from accounts.models import Status
        from presence import services
        from presence.models import Source
        from presence.selectors import chat_box_snapshot

        account, owner = account_services.account_create(
            name="Reconnect bench", email="rc@bench.example", password=None
        )
        # The longest grace: one heartbeat keeps the operator present for the whole run.
        account = account_services.account_update(account=account, stale_after_seconds=3600)
        services.presence_heartbeat(operator=owner, conn_id="bench-reconnect", device="bench")
        services.operator_set_status(operator=owner, status=Status.ONLINE, source=Source.API)
        assert chat_box_snapshot(account_id=account.id)["status"] == Status.ONLINE
        with Pool(2) as pool:
            log(f"project: {n} widget clients, kill and restart")
            project = storm(
                pool,
                infra,
                name="web",
                url_path=f"/ws/widget/{account.widget_key}/",
                n=n,
                app=None,
                settings=None,
                true_status=Status.ONLINE,
            )
            log(f"baseline: {n} bare-consumer clients, kill and restart")
            baseline = storm(
                pool,
                infra,
                name="baseline",
                url_path="/ws/bench/pubsub/",
                n=n,
                app="bench.baseline_app:application",
                settings="bench.baseline_settings",
                true_status="online",
            )
        report.details = {"project": project, "baseline": baseline}
        rows = [
            [
                name,
                r["connected_before"],
                r["reconnected"],
                r["listening_after_s"],
                r["t50_s"],
                r["t99_s"],
                r["t99_after_listening_s"],
                r["refused_before_listening"],
                r["refused_after_listening"],
                sum(r["other_failures"].values()),
                r["wrong_statuses"],
            ]
            for name, r in (("project", project), ("baseline", baseline))
        ]
        print()
        print(
            table(
                [
                    "system",
                    "clients",
                    "back",
                    "listen s",
                    "t50 s",
                    "t99 s",
                    "t99-listen s",
                    "refused<listen",
                    "refused≥listen",
                    "other fail",
                    "wrong status",
                ],
                rows,
            )
        )
        report.figure(
            f"clients back within {STORM_CAP_S:.0f} s of the kill",
            round(100 * project["reconnected"] / n, 1),
            "%",
            target="≥ 99 %",
            met=project["reconnected"] >= 0.99 * n,
            baseline=round(100 * baseline["reconnected"] / n, 1),
        )
        report.figure(f"99 % of {n:,} clients back after kill", project["t99_s"], "s", baseline=baseline["t99_s"])
        report.figure(
            "  of which after listening again",
            project["t99_after_listening_s"],
            "s",
            baseline=baseline["t99_after_listening_s"],
        )
        report.figure(
            "refused after listening (backlog)",
            project["refused_after_listening"],
            target="0",
            met=project["refused_after_listening"] == 0,
            baseline=baseline["refused_after_listening"],
        )
        report.figure(
            "status flaps (wrong status seen)",
            project["wrong_statuses"],
            target="0",
            met=project["wrong_statuses"] == 0,
        )
        report.check("every client connected before the kill", project["connected_before"] == n)
        report.check("99 % of clients back", project["t99_s"] is not None)
        report.check("no client saw a wrong status", project["wrong_statuses"] == 0)
        report.check("no refusal once listening", project["refused_after_listening"] == 0)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
