"""The widget status read as a bare ASGI endpoint in front of Django.

``GET /widget/v1/{key}/status`` is the one request every visitor of every
customer's page makes, and a polling widget makes it every few seconds. Its
answer is a lookup in the presence store, so the cost is all in the path to it:
through Django's handler and middleware (which hops into a worker thread, then
runs a dozen middleware for a cookie-less public read) it costs several times
the lookup itself. This app answers that one request directly and hands every
other request, unchanged, to Django. Every answer is read afresh from the
store, so a read right after a change already shows it.

It gives exactly the answer of ``widget.views.widget_status`` (same selector,
same body, ETag, 304, cache and CORS headers as django-cors-headers adds for
``/widget/v1/``); ``tests/widget/test_asgi.py`` holds the two side by side.
"""

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http.request import split_domain_port, validate_host

from widget import selectors
from widget.views import GROUP_KEY_MAX, NOT_FOUND_BODY, STATUS_CACHE_CONTROL, etag_matches

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

STATUS_PATH = re.compile(r"^/widget/v1/([^/]+)/status$")

# What SecurityMiddleware and django-cors-headers add to this response in Django.
_COMMON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", STATUS_CACHE_CONTROL.encode()),
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", ", ".join(settings.CORS_EXPOSE_HEADERS).encode()),
    (b"vary", b"origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _widget_status_read(*, widget_key: str, group_key: str | None) -> selectors.WidgetStatus | None:
    try:
        return selectors.widget_status(widget_key=widget_key, group_key=group_key)
    finally:
        # A warm read opens no database connection; a cold one (memo expired,
        # snapshot due) closes its own, as a request would with CONN_MAX_AGE=0.
        if connection.connection is not None:
            connection.close()


# Any pool thread, not the one thread Django keeps for sync code: reads are
# independent, and a warm one touches only the store.
_widget_status = sync_to_async(_widget_status_read, thread_sensitive=False)


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _host_allowed(scope: dict) -> bool:
    host = _header(scope, b"host")
    if host is None:
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


async def _respond(send: Callable, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    common = _COMMON_HEADERS if status != 304 else _COMMON_HEADERS[1:]  # a 304 has no content type
    headers = [*common, *extra, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class _Answer:
    etag: str
    body: bytes


async def widget_status_answer(widget_key: str, group_key: str | None) -> _Answer | None:
    """The answer for one key and group (None: unknown), from the snapshot."""
    status = await _widget_status(widget_key=widget_key, group_key=group_key)
    if status is None:
        return None
    return _Answer(status.etag, json.dumps(status.body, separators=(",", ":"), ensure_ascii=False).encode())


async def widget_status_endpoint(scope: dict, send: Callable, widget_key: str) -> None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    group_key = (query.get("group") or [""])[0] or None
    answer = None
    if len(widget_key) <= selectors.WIDGET_KEY_MAX and (group_key is None or len(group_key) <= GROUP_KEY_MAX):
        answer = await widget_status_answer(widget_key, group_key)
    if answer is None:
        await _respond(send, 404, NOT_FOUND_BODY, [])
        return
    etag = [(b"etag", answer.etag.encode())]
    if etag_matches(_header(scope, b"if-none-match"), answer.etag):
        await _respond(send, 304, b"", etag)
        return
    await _respond(send, 200, answer.body, etag)


def with_widget_status(app: ASGIApp) -> ASGIApp:
    """Wrap the HTTP application: widget status reads are answered here."""

    async def application(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = STATUS_PATH.match(scope["path"])
            # Anything unusual (a host Django would refuse) gets Django's own answer.
            if match is not None and _host_allowed(scope):
                await widget_status_endpoint(scope, send, match.group(1))
                return
        await app(scope, receive, send)

    return application
