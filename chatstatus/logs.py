"""Logs: one JSON object per line (``LOG_FORMAT=json``), with the request id and account.

Every HTTP request and WebSocket gets a request id at the ASGI edge
(``with_request_id``): the one a trusted proxy sent in ``X-Request-ID`` (nginx's
``$request_id``; ``chatstatus.proxy`` drops the header from anyone else), or a
fresh one. It lives in a context variable, which asgiref carries into the
threads Django's views run in, so every line logged while answering carries it.
``RequestLogContextMiddleware`` (after the authentication middleware) lets the
formatter name the operator's account — only when the request already looked
the user up: logging never costs a query and never opens a session.

What a line holds is fixed (``JsonLogFormatter.FIELDS``): time, level, logger,
message, request id, account id, and the traceback of an exception. Nothing
a caller passes in ``extra`` is written (Django's ``django.request`` passes the
whole request), so no header, cookie, token or body reaches the log.
"""

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.utils.functional import SimpleLazyObject
from pythonjsonlogger.json import JsonFormatter

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# One dict per request: the id, and the Django request once the middleware saw it.
_context: ContextVar[dict[str, Any] | None] = ContextVar("chatstatus_log_context", default=None)


def request_id() -> str | None:
    context = _context.get()
    return _context_id(context) if context else None


def _context_id(context: dict[str, Any]) -> str:
    """The request's id, made on first use: most requests log nothing and never need one."""
    given = context["request_id"]
    if given is None:
        given = context["request_id"] = uuid.uuid4().hex
    return given


def _account_id(context: dict[str, Any]) -> int | None:
    request = context.get("request")
    if request is None:
        return None
    user = request.__dict__.get("user")
    # type(), not isinstance(): isinstance would evaluate the lazy user (a session read, a query).
    if type(user) is SimpleLazyObject:
        user = request.__dict__.get("_cached_user")
    return getattr(user, "account_id", None) if user is not None else None


def with_request_id(app: ASGIApp) -> ASGIApp:
    async def identified(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        given = next((value for key, value in scope.get("headers") or [] if key == b"x-request-id"), b"")
        given_id = given.decode("latin-1")
        token = _context.set({"request_id": given_id if _VALID_ID.match(given_id) else None})
        try:
            await app(scope, receive, send)
        finally:
            _context.reset(token)

    return identified


class RequestLogContextMiddleware:
    """Hands the request to the log context (read lazily, see ``_account_id``)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        context = _context.get()
        if context is not None:
            context["request"] = request
        return self.get_response(request)


class JsonLogFormatter(JsonFormatter):
    FIELDS = ("time", "level", "logger", "message", "request_id", "account_id", "exc_info")

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        context = _context.get()
        if context is not None:
            log_data["request_id"] = _context_id(context)
            account_id = _account_id(context)
            if account_id is not None:
                log_data["account_id"] = account_id
        if message_dict.get("exc_info"):
            log_data["exc_info"] = message_dict["exc_info"]
