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
same body, ETag, 304, the headers SecurityMiddleware, the Content-Security-Policy
middleware and django-cors-headers add for ``/widget/v1/``, built from the
settings on every request);
``tests/widget/test_asgi.py`` holds the two side by side.

It stands in for Django's middleware, so it checks at start-up that the
middleware is the stack it was written for (``EXPECTED_MIDDLEWARE``); with any
other stack, or when Django would redirect the request to HTTPS, it steps
aside and Django answers.
"""

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs

from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from django.utils.csp import CSP, build_policy
from django.utils.log import log_message, request_logger

from widget import selectors
from widget.views import GROUP_KEY_MAX, NOT_FOUND_BODY, STATUS_CACHE_CONTROL, etag_matches

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

STATUS_PATH = re.compile(r"^/widget/v1/([^/]+)/status$")

# The stack whose headers this endpoint reproduces. Only SecurityMiddleware,
# ContentSecurityPolicyMiddleware and CorsMiddleware add headers to this
# response; the others leave a cookie-less public JSON read alone
# (LocaleMiddleware's Content-Language and XFrameOptionsMiddleware's
# X-Frame-Options mean nothing for it; the dashboard's PrivatePagesMiddleware
# and PagePolicyMiddleware skip /widget paths and non-HTML answers).
EXPECTED_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chatstatus.logs.RequestLogContextMiddleware",  # hands the request to the log context; no header
    "dashboard.middleware.PrivatePagesMiddleware",
    "dashboard.middleware.PagePolicyMiddleware",
    "dashboard.middleware.OperatorLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)


def fast_path_supported() -> bool:
    return tuple(settings.MIDDLEWARE) == EXPECTED_MIDDLEWARE


def is_secure(scope: dict) -> bool:
    """``HttpRequest.is_secure``: the connection's scheme, or the proxy's header when one is configured."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = header(scope, name.removeprefix("HTTP_").lower().replace("_", "-").encode())
        if forwarded is not None:
            return forwarded.split(",")[0].strip() == value
    return scope.get("scheme") in ("https", "wss")


# Built once per combination and settings: the read every visitor's page makes
# should not rebuild eight headers and a policy string. A changed setting (tests'
# override_settings) clears it, as Django's own caches of settings are cleared.
@functools.cache
def response_headers(
    *, secure: bool, with_type: bool, cross_origin: bool, cache_control: str = STATUS_CACHE_CONTROL
) -> tuple[tuple[bytes, bytes], ...]:
    """What SecurityMiddleware, ContentSecurityPolicyMiddleware and
    django-cors-headers add to a public ``/widget/v1/`` JSON answer in Django,
    from the settings as they are now (``conversations.asgi`` answers with
    them too)."""
    headers = [(b"content-type", b"application/json")] if with_type else []
    headers.append((b"cache-control", cache_control.encode()))
    if cross_origin:  # django-cors-headers answers an Origin only
        headers += [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-expose-headers", ", ".join(settings.CORS_EXPOSE_HEADERS).encode()),
        ]
    headers.append((b"vary", b"origin"))
    return (*headers, *security_headers(secure=secure))


@functools.cache
def security_headers(*, secure: bool) -> tuple[tuple[bytes, bytes], ...]:
    """What SecurityMiddleware and ContentSecurityPolicyMiddleware add to a
    JSON answer (``api.asgi`` answers with them too)."""
    headers = []
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        # As SecurityMiddleware writes it: the values comma-joined, without spaces.
        values = policy.split(",") if isinstance(policy, str) else policy
        policy = ",".join(value.strip() for value in values)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    # Django's own rendering of the policy; a JSON answer never uses the nonce, so none is given.
    for name, config in (
        (CSP.HEADER_ENFORCE, settings.SECURE_CSP),
        (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY),
    ):
        if config:
            headers.append((name.lower().encode(), build_policy(config).encode()))
    return tuple(headers)


@receiver(setting_changed)
def _settings_changed(**kwargs: object) -> None:
    response_headers.cache_clear()
    security_headers.cache_clear()
    _host_valid.cache_clear()


def header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def host_allowed(scope: dict) -> bool:
    host = header(scope, b"host")
    return host is not None and _host_valid(host)


# A site is reached under a handful of host names; a changed ALLOWED_HOSTS clears it.
@functools.lru_cache(maxsize=256)
def _host_valid(host: str) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def answer_logged(scope: dict, status: int) -> None:
    """Log an error answered here as Django's handler logs its own
    (``django.request``: "Not Found: /path"), so an answer in front of Django
    leaves the same trace."""
    if status >= 400:
        log_message(request_logger, "%s: %s", HTTPStatus(status).phrase, scope["path"], status_code=status)


async def _respond(send: Callable, scope: dict, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    answer_logged(scope, status)
    cross_origin = header(scope, b"origin") is not None
    # A 304 has no content type.
    common = response_headers(secure=is_secure(scope), with_type=status != 304, cross_origin=cross_origin)
    headers = [*common, *extra, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class _Answer:
    etag: str
    body: bytes


# Encoded once per account, version and group (the ETag names all three and the
# account's texts), not once per request.
_ANSWERS: dict[tuple[int, str], _Answer] = {}
_ANSWERS_MAX = 4096


async def widget_status_answer(widget_key: str, group_key: str | None) -> _Answer | None:
    """The answer for one key and group (None: unknown), from the snapshot."""
    # On the event loop: a memoised key and a current snapshot cost one read on
    # the store's asyncio client (shared by the reads that arrive together) and
    # no hop to a thread.
    status = await selectors.awidget_status(widget_key=widget_key, group_key=group_key)
    if status is None:
        return None
    cache_key = (status.account.account_id, status.etag)
    answer = _ANSWERS.get(cache_key)
    if answer is None:
        answer = _Answer(status.etag, json.dumps(status.body, separators=(",", ":"), ensure_ascii=False).encode())
        if len(_ANSWERS) >= _ANSWERS_MAX:
            _ANSWERS.clear()
        _ANSWERS[cache_key] = answer
    return answer


async def widget_status_endpoint(scope: dict, send: Callable, widget_key: str) -> None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    group_key = (query.get("group") or [""])[0] or None
    answer = None
    if len(widget_key) <= selectors.WIDGET_KEY_MAX and (group_key is None or len(group_key) <= GROUP_KEY_MAX):
        answer = await widget_status_answer(widget_key, group_key)
    if answer is None:
        await _respond(send, scope, 404, NOT_FOUND_BODY, [])
        return
    etag = [(b"etag", answer.etag.encode())]
    if etag_matches(header(scope, b"if-none-match"), answer.etag):
        await _respond(send, scope, 304, b"", etag)
        return
    await _respond(send, scope, 200, answer.body, etag)


def in_front_of(
    app: ASGIApp,
    *,
    method: str,
    path: re.Pattern,
    endpoint: Callable[[dict, Callable, Callable, re.Match], Awaitable[None]],
) -> ASGIApp:
    """``app`` with ``method`` requests to ``path`` answered by
    ``endpoint(scope, receive, send, match)`` in front of it: the one place
    that says which requests an endpoint in front of Django may take.
    Anything unusual (a host Django would refuse, a plain-HTTP request Django
    would redirect) gets Django's own answer."""

    async def application(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == method:
            match = path.match(scope["path"])
            if match is not None and host_allowed(scope) and (not settings.SECURE_SSL_REDIRECT or is_secure(scope)):
                await endpoint(scope, receive, send, match)
                return
        await app(scope, receive, send)

    return application


def with_widget_status(app: ASGIApp) -> ASGIApp:
    """Wrap the HTTP application: widget status reads are answered here."""
    if not fast_path_supported():
        return app

    async def endpoint(scope: dict, receive: Callable, send: Callable, match: re.Match) -> None:
        await widget_status_endpoint(scope, send, match.group(1))

    return in_front_of(app, method="GET", path=STATUS_PATH, endpoint=endpoint)


@checks.register()
def fast_path_check(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    if fast_path_supported():
        return []
    return [
        checks.Warning(
            "MIDDLEWARE differs from the stack the widget status fast path reproduces; "
            "status reads go through Django (slower)",
            hint="Update widget.asgi.EXPECTED_MIDDLEWARE and its headers together.",
            id="widget.W001",
        )
    ]
