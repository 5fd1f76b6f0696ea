"""``/healthz``, ``/readyz`` and ``/metrics``, answered in front of Django.

A load balancer's probe carries no ``Host`` that ``ALLOWED_HOSTS`` knows and
speaks plain HTTP to a process that redirects to HTTPS; Prometheus scrapes
each process by its own address. So these three answer before Django's
middleware (no host check, no redirect, no session), on GET and HEAD:

* ``/healthz`` — the process is alive: 200, no I/O at all.
* ``/readyz`` — the database and the presence store answer: 200, or 503 with
  the names of those that do not (``{"status":"unavailable","failing":["store"]}``).
  Each check has ``READY_TIMEOUT_SECONDS``; the store is pinged without
  retries (the store's own client retries for seconds). No error text, host
  or setting is ever in the body.
* ``/metrics`` — this process's Prometheus metrics, only for a client whose
  address is in ``METRICS_ALLOW_FROM`` or that sends
  ``Authorization: Bearer <METRICS_TOKEN>``; 403 for anyone else, and for
  everyone when neither is set.
"""

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from django.conf import settings
from django.db import connection
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from chatstatus.proxy import is_trusted, parse_address
from chatstatus.redis_ha import RedisTarget, sync_client

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

READY_TIMEOUT_SECONDS = 3
PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Two threads: a probe never queues behind the one thread Django's sync views share.
_PROBES = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")


def metrics_allowed(*, client: str | None, authorization: str | None) -> bool:
    """May this caller read ``/metrics``? Deny unless the configuration names it."""
    token = settings.METRICS_TOKEN
    if token and authorization and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    return client is not None and is_trusted(parse_address(client), settings.METRICS_ALLOW_FROM)


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)


def _database_check() -> None:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


@cache
def _store_probe(url: str, sentinels: tuple[tuple[str, int], ...], master: str | None):
    target = RedisTarget(url=url, sentinels=sentinels, master=master)
    return sync_client(
        target, socket_timeout=READY_TIMEOUT_SECONDS - 1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )


def _store_check() -> None:
    if settings.EMBEDDED:
        return  # the store is this process's memory
    _store_probe(settings.REDIS_URL, settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER).ping()


CHECKS: dict[str, Callable[[], None]] = {"database": _database_check, "store": _store_check}


async def readiness() -> list[str]:
    """The names of the checks that failed (empty: ready)."""
    loop = asyncio.get_running_loop()

    async def run(check: Callable[[], None]) -> bool:
        try:
            await asyncio.wait_for(loop.run_in_executor(_PROBES, check), READY_TIMEOUT_SECONDS)
        except Exception:
            return False
        return True

    results = await asyncio.gather(*(run(check) for check in CHECKS.values()))
    return [name for name, ok in zip(CHECKS, results, strict=True) if not ok]


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


async def _answer(send: Callable, status: int, body: bytes, *, content_type: bytes, head: bool) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _json(data: dict) -> bytes:
    return json.dumps(data).encode()


def with_health(app: ASGIApp) -> ASGIApp:
    """``app`` with the three operational endpoints in front of it."""

    async def front(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] not in PATHS:
            await app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        json_type = b"application/json"
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, _json({"error": "method_not_allowed"}), content_type=json_type, head=False)
            return
        path = scope["path"]
        if path == "/healthz":
            await _answer(send, 200, _json({"status": "ok"}), content_type=json_type, head=head)
        elif path == "/readyz":
            failing = await readiness()
            if failing:
                body = _json({"status": "unavailable", "failing": failing})
                await _answer(send, 503, body, content_type=json_type, head=head)
            else:
                await _answer(send, 200, _json({"status": "ready"}), content_type=json_type, head=head)
        else:
            client = scope.get("client")
            if not metrics_allowed(
                client=client[0] if client else None, authorization=_header(scope, b"authorization")
            ):
                await _answer(send, 403, _json({"error": "forbidden"}), content_type=json_type, head=head)
                return
            await _answer(send, 200, metrics_text(), content_type=CONTENT_TYPE_LATEST.encode(), head=head)

    return front


def serve_metrics(*, host: str, port: int) -> None:
    """``/metrics`` of a process that serves no HTTP otherwise (a Celery worker
    or beat), on ``host:port`` in a daemon thread, behind the same access rule."""
    import threading
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            return

    def metrics_app(environ: dict, start_response: Callable) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [_json({"error": "not_found"})]
        if not metrics_allowed(client=environ.get("REMOTE_ADDR"), authorization=environ.get("HTTP_AUTHORIZATION")):
            start_response("403 Forbidden", [("Content-Type", "application/json")])
            return [_json({"error": "forbidden"})]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [metrics_text()]

    server = make_server(host, port, metrics_app, server_class=Server, handler_class=QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
