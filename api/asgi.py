"""An operator's reply as a bare ASGI endpoint in front of Django.

``POST /api/v1/conversations/{id}/messages`` with ``Authorization: Token``
is what the inbox of a phone (and any integration) sends for every reply;
on a busy account, as often as visitors write. Through Django each took a
thread, the middleware chain, DRF's request and five statements the ORM
built anew. Here a reply is served on the event loop: the token read (its
last use touched as ``ApiTokenAuthentication`` does), the reply counted
against ``OperatorMessageRateThrottle``'s rate, then
``conversations.services.aoperator_message_post`` (the same rules as the
ORM's path, two statements), and the same 201/200 answer as
``ConversationMessagesView``, headers included
(``tests/api/test_asgi.py`` holds the two side by side).

Only a reply that succeeds is answered here. Everything else is handed to
Django unchanged, body included, and gets DRF's own answer in the operator's
language: no or another kind of credentials, a token unknown or revoked, a
body that is not a JSON object or not valid, a throttled reply (counted once:
the throttle reads the count made here), a conversation not found or closed,
an oversized request, the database pool out of reach.

It is on where ``conversations.asgi`` is (the middleware stack it was written
for, PostgreSQL).
"""

import json
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils import timezone, translation
from django.utils.http import http_date

from accounts.auth import atoken_lookup, parse_authorization
from api.throttles import OperatorMessageRateThrottle
from conversations import services
from conversations.asgi import HandOver, fast_path_supported, message_input, served_or_handed_over
from conversations.payloads import message_payload
from widget.asgi import ASGIApp, header, in_front_of, is_secure, security_headers
from widget.ratelimit import COUNTED_SCOPE_KEY, aratelimit_hit

REPLY_PATH = re.compile(r"^/api/v1/conversations/([0-9]{1,18})/messages$")
BODY_MAX_BYTES = 32 * 1024  # a reply is at most 4,000 characters: anything larger is Django's to refuse


def _json_content(scope: dict) -> bool:
    """DRF's JSON parser takes the body (``application/json``, any parameters)."""
    content_type = header(scope, b"content-type") or ""
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _json_accepted(scope: dict) -> bool:
    """DRF's content negotiation would pick JSON (no ``Accept``, or one that
    takes it); anything else (a 406, a ``?format=``) is DRF's to answer."""
    if scope.get("query_string"):
        return False
    accept = header(scope, b"accept")
    if accept is None:
        return True
    ranges = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return bool(ranges & {"*/*", "application/*", "application/json"})


async def _reply_post(scope: dict, body: bytes, conversation_id: int) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    key = parse_authorization(header(scope, b"authorization"))
    if key is None or not _json_content(scope) or not _json_accepted(scope):
        raise HandOver
    text, client_id = message_input(body)
    token = await atoken_lookup(key, now=timezone.now())
    if token is None:
        raise HandOver
    operator = token.operator
    if operator.account_id is None:
        raise HandOver  # site staff: the API is for operators of an account
    throttle = OperatorMessageRateThrottle
    retry_after = await aratelimit_hit(scope=throttle.scope, ident=str(operator.pk), limits=throttle().limits())
    scope[COUNTED_SCOPE_KEY] = retry_after  # the throttle reads it if Django gets the request after all
    if retry_after is not None:
        raise HandOver
    try:
        posted = await services.aoperator_message_post(
            conversation_id=conversation_id, operator=operator, body=text, client_id=client_id
        )
    except (services.ConversationNotFound, services.ConversationClosed):
        raise HandOver from None
    # As DRF's JSONRenderer writes it (compact, UTF-8).
    answer = json.dumps(message_payload(posted.message), separators=(",", ":"), ensure_ascii=False).encode()
    return (201 if posted.created else 200), answer, _headers(scope)


# Django's never-cache headers: PrivatePagesMiddleware puts them on every API answer.
NEVER_CACHE = b"max-age=0, no-cache, no-store, must-revalidate, private"


def _language(scope: dict) -> str:
    """The answer's language as LocaleMiddleware negotiates it for an API path
    (its cookie, else Accept-Language, else the default)."""
    request = HttpRequest()
    accept = header(scope, b"accept-language")
    if accept is not None:
        request.META["HTTP_ACCEPT_LANGUAGE"] = accept
    cookies = header(scope, b"cookie")
    if cookies is not None:
        request.COOKIES = parse_cookie(cookies)
    return translation.get_language_from_request(request)


def _headers(scope: dict) -> list[tuple[bytes, bytes]]:
    """What DRF's view and Django's middleware put on this answer (for an API
    path: no CORS; ``tests/api/test_asgi.py`` compares them)."""
    return [
        (b"content-type", b"application/json"),
        (b"allow", b"POST, OPTIONS"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.upper().encode()),
        (b"expires", http_date().encode()),
        (b"cache-control", NEVER_CACHE),
        (b"vary", b"Accept-Language"),
        (b"content-language", _language(scope).encode()),
        *security_headers(secure=is_secure(scope)),
    ]


async def operator_reply_endpoint(
    scope: dict, receive: Callable, send: Callable, app: ASGIApp, conversation_id: int
) -> None:
    async def serve(body: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        return await _reply_post(scope, body, conversation_id)

    await served_or_handed_over(scope, receive, send, app, limit=BODY_MAX_BYTES, serve=serve, what="operator reply")


def with_operator_replies(app: ASGIApp) -> ASGIApp:
    """Wrap the HTTP application: operators' replies with a token are served here."""
    if not fast_path_supported():
        return app

    async def endpoint(scope: dict, receive: Callable, send: Callable, match: re.Match) -> None:
        await operator_reply_endpoint(scope, receive, send, app, int(match.group(1)))

    return in_front_of(app, method="POST", path=REPLY_PATH, endpoint=endpoint)
