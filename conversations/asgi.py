"""A visitor's message as a bare ASGI endpoint in front of Django.

``POST /widget/v1/{key}/conversations/{id}/messages`` comes by the hundred a
second on a busy site. Through Django each took a thread of its own, the
middleware chain, and SQL the ORM built anew (docs/PERFORMANCE.md: about two
thirds of the web process's CPU a message). Here it is served on the event
loop: the same checks as ``conversations.views.conversation_message``, then
``services.avisitor_message_post`` (the same rules as the ORM's path, three
statements on psycopg's asyncio pool), then the same answer.

Only the common case is served here: a well-formed message with a valid
token, from an allowed origin, of a known key. Anything else (a bad body, a
bad token, an oversized request, an unknown key, a foreign origin, a host
Django would refuse, a plain-HTTP request Django would redirect, the database
pool out of reach) is handed to Django unchanged, body included, and gets
Django's own answer. Of the answers given here, 201/200 (the message), 404
(no such conversation for this visitor) and 429 (the write limits, counted
as the view counts them) are the view's, with the headers
``widget.asgi.response_headers`` reproduces, and are logged as Django logs
them (``django.request``); ``tests/conversations/test_asgi.py`` holds the
two side by side.

It is on when ``widget.asgi`` can stand in for the middleware stack and the
database is PostgreSQL (``chatstatus.adb.available()``); otherwise every
message goes through Django (the embedded mode).
"""

import json
import logging
import re
from collections.abc import Awaitable, Callable

from chatstatus import adb
from conversations import inputs, services, views
from conversations.payloads import message_payload
from presence.json_input import InvalidJson, json_parse
from widget.asgi import ASGIApp, answer_logged, header, in_front_of, is_secure, response_headers
from widget.asgi import fast_path_supported as widget_fast_path_supported
from widget.ratelimit import COUNTED_SCOPE_KEY, aratelimit_hits
from widget.selectors import awidget_account
from widget.visitors import visitor_token_digest, visitor_token_valid

logger = logging.getLogger(__name__)

MESSAGE_PATH = re.compile(r"^/widget/v1/([^/]+)/conversations/([0-9]{1,18})/messages$")
NOT_FOUND_BODY = json.dumps(views.NOT_FOUND, separators=(",", ":")).encode()
RATE_LIMITED_BODY = json.dumps({"error": "rate_limited"}, separators=(",", ":")).encode()


def fast_path_supported() -> bool:
    return widget_fast_path_supported() and adb.available()


class HandOver(Exception):
    """Not the common case: Django answers this request."""


async def body_read(receive: Callable[[], Awaitable[dict]], *, limit: int) -> tuple[list[dict], bool] | None:
    """The request's messages as received, and whether the body is whole
    within ``limit`` bytes (it stops reading past it). None: the client left."""
    received, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        received.append(message)
        size += len(message.get("body", b""))
        if size > limit:
            return received, False
        if not message.get("more_body", False):
            return received, True


def replayed(received: list[dict], receive: Callable[[], Awaitable[dict]]) -> Callable[[], Awaitable[dict]]:
    """``receive`` that gives what was read already, then the rest."""
    pending = list(received)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


def message_input(body: bytes) -> tuple[str, str]:
    """A JSON object's ``body`` and ``client_id``, as ``conversations.inputs``
    cleans them for both views; ``HandOver`` for anything else (Django's
    answer names what is wrong)."""
    try:
        data = json_parse(body)
    except InvalidJson:
        raise HandOver from None
    if not isinstance(data, dict):
        raise HandOver
    errors: dict[str, list[str]] = {}
    text = inputs.body_clean(data.get("body"), errors)
    client_id = inputs.client_id_clean(data.get("client_id"), errors)
    if errors:
        raise HandOver
    return text, client_id


async def served_or_handed_over(
    scope: dict,
    receive: Callable,
    send: Callable,
    app: ASGIApp,
    *,
    limit: int,
    serve: Callable[[bytes], Awaitable[tuple[int, bytes, list[tuple[bytes, bytes]]]]],
    what: str,
) -> None:
    """Read the body (up to ``limit``), ``serve`` it, and send its (status,
    body, headers); a ``HandOver``, a body past ``limit`` or the database
    pool out of reach gives the request, body and all, to Django."""
    read = await body_read(receive, limit=limit)
    if read is None:
        return
    received, whole = read
    try:
        if not whole:
            raise HandOver
        status, body, headers = await serve(b"".join(message.get("body", b"") for message in received))
    except HandOver:
        await app(scope, replayed(received, receive), send)
        return
    except adb.Unavailable:
        # Django's path has its own pool (and, past it, the admission line's 503).
        logger.warning("%s handed to Django: the database pool is out of reach", what, exc_info=True)
        await app(scope, replayed(received, receive), send)
        return
    answer_logged(scope, status)
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: dict, extra: tuple[tuple[bytes, bytes], ...] = ()) -> list[tuple[bytes, bytes]]:
    cross_origin = header(scope, b"origin") is not None
    common = response_headers(
        secure=is_secure(scope), with_type=True, cross_origin=cross_origin, cache_control="no-store"
    )
    return [*common, *extra]


async def _message_post(scope: dict, body: bytes, widget_key: str, conversation_id: int) -> tuple[int, bytes, list]:
    """The view's checks and its call; raises ``HandOver`` where Django answers."""
    token = header(scope, views.TOKEN_HEADER.lower().encode())
    if not visitor_token_valid(token):
        raise HandOver
    text, client_id = message_input(body)
    account = await awidget_account(widget_key=widget_key)
    if account is None or not account.writes_from(header(scope, b"origin")):
        raise HandOver
    address = scope["client"][0] if scope.get("client") else "unknown"
    retry_after = await aratelimit_hits(views.visitor_write_hits(address=address, token=token))
    # Counted once: if Django gets the request after all, its view reads this.
    scope[COUNTED_SCOPE_KEY] = retry_after
    if retry_after is not None:
        return 429, RATE_LIMITED_BODY, _headers(scope, ((b"retry-after", str(retry_after).encode()),))
    try:
        posted = await services.avisitor_message_post(
            account_id=account.account_id,
            conversation_id=conversation_id,
            token_digest=visitor_token_digest(token),
            body=text,
            client_id=client_id,
        )
    except services.ConversationNotFound:
        return 404, NOT_FOUND_BODY, _headers(scope)
    answer = json.dumps(message_payload(posted.message), separators=(",", ":"), ensure_ascii=False).encode()
    return (201 if posted.created else 200), answer, _headers(scope)


async def visitor_message_endpoint(
    scope: dict, receive: Callable, send: Callable, app: ASGIApp, widget_key: str, conversation_id: int
) -> None:
    async def serve(body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        return await _message_post(scope, body, widget_key, conversation_id)

    await served_or_handed_over(
        scope, receive, send, app, limit=views.BODY_MAX_BYTES, serve=serve, what="visitor message"
    )


def with_visitor_messages(app: ASGIApp) -> ASGIApp:
    """Wrap the HTTP application: visitors' messages are served here."""
    if not fast_path_supported():
        return app

    async def endpoint(scope: dict, receive: Callable, send: Callable, match: re.Match) -> None:
        await visitor_message_endpoint(scope, receive, send, app, match.group(1), int(match.group(2)))

    return in_front_of(app, method="POST", path=MESSAGE_PATH, endpoint=endpoint)
