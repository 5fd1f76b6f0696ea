"""Widget status endpoint under load: the materialised snapshot vs computing per request.

One Daphne process at a time serves; 50 keep-alive HTTP/1.1 connections (raw
asyncio streams, in this process) request as fast as answers come back.
Measured one after the other:

* ``status``: ``GET /widget/v1/{key}/status`` on ``chatstatus.asgi:application``
  as deployed (snapshot from the store, no database query when warm);
* ``status asgi``, ``status asgi 304`` (a polling widget's matching
  ``If-None-Match``), ``status asgi group`` (``?group=sales``): the same read
  answered by ``widget.asgi.with_widget_status`` in front of Django;
* ``naive``: a Django view that computes the same answer from the database on
  every request (the account by key, operators, groups, memberships, opening
  hours, then the §3 rule);
* ``daphne floor``: a constant answered by a bare ASGI function, the least
  any request costs on this Daphne and machine (context for the latencies).

The second Daphne runs ``bench.widget_status:application``: the project's
application wrapped by ``with_widget_status``, with a urlconf that adds
``/bench/naive/{key}/status`` and ``/bench/floor`` exist only in this benchmark
(see ``__getattr__``).

Targets on 2 cores, for ``status`` (the read as deployed): ≥ 5 × naive and
≥ 0.6 × the Daphne floor requests/s, p99 ≤ 2 × the floor's p99 (and ≤ 20 ms,
which at 50 connections on two cores not even the floor meets).

    .venv/bin/python bench/widget_status.py [--quick] [--connections 50] [--seconds 10]
"""

import asyncio
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Infra, Report, cpu_seconds, latency_stats, log, parser, table  # noqa: E402

OPERATORS = 40
GROUPS = ["sales", "support", "billing", "returns", "wholesale"]
TARGET_RATIO = 5
TARGET_P99_MS = 20
# Against Daphne answering a constant in the same run.
TARGET_FLOOR = 0.6
TARGET_P99_OF_FLOOR = 2
ORIGIN = "https://shop.example"
NAIVE_PATH = "/bench/naive/{key}/status"


# --- the naive view, served only by this benchmark's Daphne -------------------------------


def naive_status(request, widget_key: str):
    """The obvious implementation: every request recomputes from the database."""
    from django.http import JsonResponse
    from django.utils import timezone

    from accounts.models import Account
    from presence.selectors import chat_box_states

    account_id = Account.objects.filter(widget_key=widget_key).values_list("id", flat=True).first()
    if account_id is None:
        return JsonResponse({"error": "not_found"}, status=404)
    state = chat_box_states(account_ids=[account_id], now=timezone.now())[account_id]
    group = request.GET.get("group")
    if group is not None and group not in state.groups:
        return JsonResponse({"error": "not_found"}, status=404)
    box = state.box(group)
    moment = box.next_change_at
    return JsonResponse(
        {
            "status": box.status,
            "reason": box.reason,
            "version": 0,
            "next_change_at": moment.isoformat().replace("+00:00", "Z") if moment else None,
        }
    )


def __getattr__(name: str):
    # Built on first use inside the benchmark's Daphne only: importing this
    # module elsewhere (the controller) sets nothing up.
    if name == "urlpatterns":
        from django.urls import include, path

        return [path(NAIVE_PATH.format(key="<str:widget_key>")[1:], naive_status), path("", include("chatstatus.urls"))]
    if name == "application":
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatstatus.settings")
        django.setup()
        from django.conf import settings

        settings.ROOT_URLCONF = __name__
        from chatstatus.asgi import application
        from widget.asgi import with_widget_status

        return _with_floor(with_widget_status(application))
    raise AttributeError(name)


FLOOR_PATH = "/bench/floor"
FLOOR_BODY = b'{"status":"online","reason":"operators_online","version":1,"next_change_at":null}'


def _with_floor(app):
    """``/bench/floor`` answers a constant at once: what Daphne itself costs per request."""

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == FLOOR_PATH:
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(FLOOR_BODY)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": FLOOR_BODY})
            return
        await app(scope, receive, send)

    return application


# --- the load ---------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _connection(port: int, request: bytes, *, warm_until: float, stop_at: float, sink: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                break
            writer.write(request)
            status = await _read_response(reader)
            took = time.perf_counter() - started
            if started >= warm_until:
                sink["latencies"].append(took)
                sink["statuses"][status] = sink["statuses"].get(status, 0) + 1
    finally:
        writer.close()


async def _load(port: int, request: bytes, *, connections: int, warmup: float, seconds: float) -> dict:
    now = time.perf_counter()
    sink: dict = {"latencies": [], "statuses": {}}
    tasks = [
        _connection(port, request, warm_until=now + warmup, stop_at=now + warmup + seconds, sink=sink)
        for _ in range(connections)
    ]
    await asyncio.gather(*tasks)
    return sink


def measure(server, path: str, *, connections: int, warmup: float, seconds: float, etag: str | None = None) -> dict:
    extra = f"If-None-Match: {etag}\r\n" if etag else ""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nOrigin: {ORIGIN}\r\n"
        f"Accept: application/json\r\n{extra}\r\n"
    ).encode()
    client_cpu0, server_cpu0 = time.process_time(), cpu_seconds(server.pid)
    sink = asyncio.run(_load(server.port, request, connections=connections, warmup=warmup, seconds=seconds))
    stats = latency_stats(sink["latencies"])
    return {
        **stats,
        "rps": round(stats["count"] / seconds, 1),
        "statuses": sink["statuses"],
        "server_cpu_s": round(cpu_seconds(server.pid) - server_cpu0, 2),
        "client_cpu_s": round(time.process_time() - client_cpu0, 2),
        "seconds": seconds,
        "connections": connections,
    }


def _fetch(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Origin": ORIGIN})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# --- the run --------------------------------------------------------------------------------


def main() -> int:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--connections", type=int, default=50)
    cli.add_argument("--seconds", type=float, default=10.0)
    args = cli.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    warmup = 1.0 if args.quick else 2.0
    report = Report("widget_status", args.quick)
    with Infra("widget_status") as infra:
        infra.django()
        import json

        from accounts import services as account_services
        from accounts.models import Operator, Status
        from groups.services import group_create
        from hours.services import opening_hours_set
        from presence import services

        log(f"creating an account with {OPERATORS} operators and {len(GROUPS)} groups")
        account, _owner = account_services.account_create(
            name="Status bench", email="owner@bench.example", password=None
        )
        operators = [
            account_services.operator_create(
                account=account, email=f"op{i}@bench.example", display_name=f"Operator {i}"
            )
            for i in range(OPERATORS)
        ]
        for index, key in enumerate(GROUPS):
            members = [op.id for i, op in enumerate(operators) if i % len(GROUPS) in (index, (index + 1) % len(GROUPS))]
            group_create(account=account, key=key, name=key.title(), member_ids=members)
        every_day = [{"from": "00:00", "to": "23:59"}]
        weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        opening_hours_set(
            account=account, enabled=True, timezone="Europe/Prague", weekly=dict.fromkeys(weekdays, every_day),
            exceptions=[],
        )  # fmt: skip
        online = operators[: OPERATORS // 2]
        Operator.objects.filter(id__in=[op.id for op in online]).update(status=Status.ONLINE)
        for op in online:
            services.presence_heartbeat(operator=op, conn_id=f"bench-{op.id}", device="bench")
        services.chat_box_refresh(account_id=account.id)

        log("starting Daphne (project) and Daphne (project + naive view)")
        web = infra.daphne("web")
        naive = infra.daphne("naive", app="bench.widget_status:application")
        key = account.widget_key
        status_path = f"/widget/v1/{key}/status"
        naive_path = NAIVE_PATH.format(key=key)

        # The two answers agree before anything is timed.
        code, headers, body = _fetch(web.port, status_path)
        naive_code, _headers, naive_body = _fetch(naive.port, naive_path)
        fast, slow = json.loads(body), json.loads(naive_body)
        same = all(fast[field] == slow[field] for field in ("status", "reason", "next_change_at"))
        report.check("status and naive answers agree", code == naive_code == 200 and same)
        report.check("status answer carries CORS *", headers.get("access-control-allow-origin") == "*")
        etag = headers["etag"]

        runs = {}
        plan = [
            ("status", web, status_path, None),
            ("status asgi", naive, status_path, None),
            ("status asgi 304", naive, status_path, etag),
            ("status asgi group", naive, status_path + "?group=sales", None),
            ("naive", naive, naive_path, None),
            ("daphne floor", naive, FLOOR_PATH, None),
        ]
        for name, server, path, match in plan:
            log(f"{name}: {args.connections} connections, {warmup:g} s warm-up + {seconds:g} s")
            runs[name] = measure(server, path, connections=args.connections, warmup=warmup, seconds=seconds, etag=match)
        expected = {name: 304 if name.endswith("304") else 200 for name in runs}
        for name, result in runs.items():
            report.check(f"{name}: every answer {expected[name]}", set(result["statuses"]) == {expected[name]})

        # The headline is the read as deployed (chatstatus.asgi:application, every
        # edge layer in front of it), beside the naive view and Daphne's floor.
        status, plain, floor = runs["status"], runs["naive"], runs["daphne floor"]
        ratio = status["rps"] / plain["rps"] if plain["rps"] else float("inf")
        of_floor = status["rps"] / floor["rps"] if floor["rps"] else 0.0
        report.figure(
            "status requests/s", status["rps"], "req/s", target=f"≥ {TARGET_RATIO}× naive, ≥ {TARGET_FLOOR}× floor",
            met=ratio >= TARGET_RATIO and of_floor >= TARGET_FLOOR, baseline=floor["rps"],
        )  # fmt: skip
        report.figure("status / daphne floor throughput", round(of_floor, 2), "×", target=f"≥ {TARGET_FLOOR}",
                      met=of_floor >= TARGET_FLOOR)  # fmt: skip
        report.figure("status / naive throughput", round(ratio, 1), "×", target=f"≥ {TARGET_RATIO}", met=ratio >= 5)
        p99_of_floor = status["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else float("inf")
        report.figure(
            "status p99", status["p99_ms"], "ms", target=f"≤ {TARGET_P99_OF_FLOOR}× floor",
            met=p99_of_floor <= TARGET_P99_OF_FLOOR, baseline=floor["p99_ms"],
        )  # fmt: skip
        report.figure(
            "status p99 (absolute)", status["p99_ms"], "ms", target=f"≤ {TARGET_P99_MS} ms",
            met=status["p99_ms"] <= TARGET_P99_MS, baseline=plain["p99_ms"],
        )  # fmt: skip
        report.figure("status p50", status["p50_ms"], "ms", baseline=floor["p50_ms"])
        report.figure("status asgi requests/s (context)", runs["status asgi"]["rps"], "req/s")
        report.figure("daphne floor requests/s (context)", floor["rps"], "req/s")
        report.figure("daphne floor p99 (context)", floor["p99_ms"], "ms")
        report.details.update(runs=runs, operators=OPERATORS, groups=GROUPS)
        rows = [
            [name, f"{r['rps']:,.0f}", r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"], r["server_cpu_s"],
             r["client_cpu_s"]]
            for name, r in runs.items()
        ]  # fmt: skip
        print()
        headers = ["endpoint", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "server cpu s", "client cpu s"]
        print(table(headers, rows))
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
