"""Requests, sockets and heartbeats counted at the ASGI edge (``chatstatus.metrics``).

Counting here, around the whole router, sees every request — the widget
status fast path answered in front of Django too — and keeps the views and
consumers free of metrics code:

* an HTTP request is counted when its answer starts, by kind of route
  (``route_kind``), method and status, and timed until its body is sent;
* a socket is open from the application's ``websocket.accept`` until its
  application instance ends;
* an operator heartbeat is a ``{"type":"heartbeat"}`` frame on
  ``/ws/operator/`` or a ``POST /api/v1/me/heartbeat``.
"""

import functools
import json
import re
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Histogram

from chatstatus.metrics import (
    HEARTBEATS,
    HTTP_REQUEST_SECONDS,
    HTTP_RESPONSES,
    OPEN_SOCKETS,
    SOCKETS_OPENED,
)

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

REST_HEARTBEAT_PATH = "/api/v1/me/heartbeat"
# A heartbeat frame is a few bytes; anything long is another message and is not parsed here.
_HEARTBEAT_MAX = 200
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_WIDGET_STATUS = re.compile(r"^/widget/v1/[^/]+/status$")
# First match wins; the label values are this fixed set, whatever the path.
_ROUTE_KINDS = (
    ("/healthz", "ops"),
    ("/readyz", "ops"),
    ("/metrics", "ops"),
    ("/widget.js", "widget"),
    ("/widget/", "widget"),
    ("/api/", "api"),
    ("/admin/", "admin"),
    ("/static/", "static"),
    ("/media/", "media"),
)


def route_kind(path: str) -> str:
    if _WIDGET_STATUS.match(path):
        return "widget_status"
    for prefix, kind in _ROUTE_KINDS:
        if path == prefix or path.startswith(prefix):
            return kind
    return "dashboard"


def socket_kind(path: str) -> str:
    if path.startswith("/ws/operator/"):
        return "operator"
    if path.startswith("/ws/widget/"):
        return "widget"
    return "other"


def _is_heartbeat(message: dict) -> bool:
    text = message.get("text")
    if not text or len(text) > _HEARTBEAT_MAX or "heartbeat" not in text:
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "heartbeat"


# The labelled series, looked up once: the label values are a small fixed set
# (a status is an int below 600), and ``labels()`` takes a lock per call.
@functools.cache
def _responses(kind: str, method: str, status: int) -> "Counter":
    return HTTP_RESPONSES.labels(kind=kind, method=method, status=str(status))


@functools.cache
def _seconds(kind: str) -> "Histogram":
    return HTTP_REQUEST_SECONDS.labels(kind=kind)


async def _http(app: ASGIApp, scope: dict, receive: Callable, send: Callable) -> None:
    kind = route_kind(scope["path"])
    method = scope["method"] if scope["method"] in _METHODS else "other"
    if kind == "api" and method == "POST" and scope["path"] == REST_HEARTBEAT_PATH:
        HEARTBEATS.labels(via="rest").inc()
    started = time.perf_counter()

    async def counting_send(message: dict) -> None:
        if message["type"] == "http.response.start":
            _responses(kind, method, message["status"]).inc()
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            _seconds(kind).observe(time.perf_counter() - started)

    await app(scope, receive, counting_send)


async def _websocket(app: ASGIApp, scope: dict, receive: Callable, send: Callable) -> None:
    kind = socket_kind(scope["path"])
    gauge = OPEN_SOCKETS.labels(kind=kind)
    accepted = False

    async def counting_send(message: dict) -> None:
        nonlocal accepted
        if message["type"] == "websocket.accept" and not accepted:
            accepted = True
            gauge.inc()
            SOCKETS_OPENED.labels(kind=kind).inc()
        await send(message)

    async def counting_receive() -> dict:
        message = await receive()
        if message["type"] == "websocket.receive" and _is_heartbeat(message):
            HEARTBEATS.labels(via="socket").inc()
        return message

    try:
        await app(scope, counting_receive if kind == "operator" else receive, counting_send)
    finally:
        if accepted:
            gauge.dec()


def with_edge_metrics(app: ASGIApp) -> ASGIApp:
    async def counted(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            await _http(app, scope, receive, send)
        elif scope["type"] == "websocket":
            await _websocket(app, scope, receive, send)
        else:
            await app(scope, receive, send)

    return counted
