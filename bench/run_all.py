"""Run every benchmark, one after the other, and print one summary table.

The database is migrated once into a template that each benchmark clones
(``createdb -T``), so a run spends its time measuring, not migrating. Each
benchmark still gets its own Redis and database. Per-benchmark output goes to
``bench/results/logs/run_all-NAME.out``; the summary to ``bench/results/run_all.json``.

Each figure is printed with the bare baseline of the same run beside it and the
last recorded run's value (``docs/bench-last.json``, kept in the repository);
a figure worse than that by more than its noise (``Figure.noise``, relative)
is flagged ``WORSE``. ``--record`` makes this run the last recorded one (for
its mode, full or quick; with ``--only``, for those benchmarks).

    .venv/bin/python bench/run_all.py [--quick] [--only fanout,sweep] [--record]
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    LOGS,
    PG,
    RESULTS,
    ROOT,
    TEMPLATE_ENV,
    fmt,
    log,
    machine,
    parser,
    regressed,
    table,
    template_db,
)

LAST = ROOT / "docs" / "bench-last.json"

BENCHMARKS = ["fanout", "idle", "heartbeats", "sweep", "reconnect", "widget_status", "conversations", "faq"]
TIMEOUT_S = {
    "fanout": 420,
    "idle": 420,
    "heartbeats": 300,
    "sweep": 360,
    "reconnect": 420,
    "widget_status": 300,
    "conversations": 600,
    "faq": 120,
}


def run_one(name: str, *, quick: bool, template: str) -> dict:
    script = ROOT / "bench" / f"{name}.py"
    if not script.exists():
        return {"benchmark": name, "status": "missing", "seconds": 0.0, "summary": []}
    out_path = LOGS / f"run_all-{name}.out"
    env = {**os.environ, TEMPLATE_ENV: template, "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    wall_started = time.time()
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), *(["--quick"] if quick else [])],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=TIMEOUT_S[name] * (0.5 if quick else 1))
            status = "ok" if code == 0 else ("checks failed" if code == 2 else f"exit {code}")
        except subprocess.TimeoutExpired:
            # The benchmark's own process group (its servers and clients) only.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            subprocess.run(["dropdb", *PG, "--force", "--if-exists", f"bench_{proc.pid}"], check=False)
            status = "timeout"
    seconds = time.monotonic() - started
    result_path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    data: dict = {}
    if result_path.exists() and result_path.stat().st_mtime >= wall_started:
        data = json.loads(result_path.read_text())
    failed = [check for check, ok in data.get("checks", {}).items() if not ok]
    return {
        "benchmark": name,
        "status": status,
        "seconds": round(seconds, 1),
        "summary": data.get("summary", []),
        "failed_checks": failed,
        "output": str(out_path.relative_to(ROOT)),
    }


def figure_key(item: dict) -> str:
    return f"{item['benchmark']}: {item['figure']}"


def last_recorded(mode: str) -> dict:
    """The last recorded run's figures of ``mode`` ("full" or "quick"), by ``figure_key``."""
    if not LAST.exists():
        return {}
    return json.loads(LAST.read_text()).get(mode, {}).get("figures", {})


def record(mode: str, runs: list[dict], machine_state: dict) -> None:
    data = json.loads(LAST.read_text()) if LAST.exists() else {}
    entry = data.get(mode, {"figures": {}})
    # Only what ran replaces what was recorded (``--only`` keeps the others).
    figures = {
        key: item for key, item in entry["figures"].items() if item["benchmark"] not in {r["benchmark"] for r in runs}
    }
    for run in runs:
        for item in run["summary"]:
            figures[figure_key(item)] = item
    data[mode] = {
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_state,
        "figures": dict(sorted(figures.items())),
    }
    LAST.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def comparison(item: dict, last: dict) -> tuple[str, str]:
    """The last recorded value, and WORSE when this one is worse beyond its noise."""
    before = last.get(figure_key(item))
    if before is None:
        return "—", ""
    return fmt(before.get("value"), before.get("unit", "")), "WORSE" if regressed(item, before) else ""


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--only", default="", help="comma-separated benchmark names")
    cli.add_argument("--record", action="store_true", help=f"record this run as the last one ({LAST.name})")
    args = cli.parse_args()
    mode = "quick" if args.quick else "full"
    last = last_recorded(mode)
    names = [name for name in args.only.split(",") if name] or BENCHMARKS
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    before = machine()
    log(f"load average before: {before['loadavg']} on {before['cpus']} CPUs")
    runs = []
    with template_db() as template:
        log(f"template database migrated in {time.monotonic() - started:.0f} s")
        for name in names:
            log(f"{name} ...")
            run = run_one(name, quick=args.quick, template=template)
            log(f"{name}: {run['status']} in {run['seconds']:.0f} s")
            runs.append(run)
    total = time.monotonic() - started
    after = machine()
    rows = []
    worse = []
    for run in runs:
        if not run["summary"]:
            rows.append([run["benchmark"], f"({run['status']})", "", "", "", "", "", ""])
        for item in run["summary"]:
            met = "" if item.get("met") is None else ("yes" if item["met"] else "NO")
            recorded, flag = comparison(item, last)
            if flag:
                worse.append(figure_key(item))
            rows.append(
                [
                    item["benchmark"],
                    item["figure"],
                    fmt(item["value"], item.get("unit", "")),
                    item.get("target", ""),
                    met,
                    fmt(item.get("baseline"), item.get("unit", "")),
                    recorded,
                    flag,
                ]
            )
    print()
    print(table(["benchmark", "figure", "value", "target", "met?", "baseline", "last recorded", ""], rows))
    if worse:
        print(f"\nworse than the last recorded run beyond its noise: {'; '.join(worse)}")
    print()
    print(
        table(
            ["benchmark", "status", "seconds", "failed checks"],
            [[r["benchmark"], r["status"], r["seconds"], ", ".join(r.get("failed_checks", []))] for r in runs],
        )
    )
    print(
        f"\ntotal {total:.0f} s; load average before {before['loadavg']}, after {after['loadavg']} "
        f"on {before['cpus']} CPUs{' (machine loaded)' if before['loaded'] or after['loaded'] else ''}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"run_all{'-quick' if args.quick else ''}.json"
    path.write_text(
        json.dumps(
            {"seconds": round(total, 1), "machine_before": before, "machine_after": after, "runs": runs},
            indent=2,
            default=str,
        )
    )
    print(f"results: {path.relative_to(ROOT)}")
    if args.record:
        record(mode, runs, {"before": before, "after": after})
        print(f"recorded as the last {mode} run: {LAST.relative_to(ROOT)}")
    return 0 if all(run["status"] in ("ok", "missing") for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
