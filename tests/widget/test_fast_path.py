"""The framework shortcuts and their start-up checks: the widget status fast path
(``widget.asgi``) answers with Django's headers under production security
settings and steps aside whenever Django would answer otherwise; the pipelined
publish (``presence.pipeline``) and the direct dispatch (``presence.dispatch``)
fall back to the framework's own way when its internals are not the known ones."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels import consumer
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.core import checks
from django.core.handlers.asgi import ASGIHandler

from accounts.models import Status
from presence import dispatch, events, pipeline
from tests.factories import make_account, make_group, make_operator, make_token
from tests.presence.conftest import Socket, committed_db, token_headers
from tests.widget.helpers import asgi_get, comparable, make_present, status_url
from widget import asgi as widget_asgi
from widget.asgi import EXPECTED_MIDDLEWARE, with_widget_status

db = database_sync_to_async
FORWARDED_HTTPS = (b"x-forwarded-proto", b"https")
HSTS = "max-age=31536000; includeSubDomains; preload"


@pytest.fixture
def secure_https(settings):
    """The settings of SECURE_HTTPS=1 behind a TLS-terminating proxy."""
    settings.SECURE_HTTPS = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.fixture
def apps(secure_https) -> tuple:
    """Django's own handler and the fast path in front of it, both built under the settings
    (SecurityMiddleware reads them once, when the handler loads its middleware)."""
    django_app = ASGIHandler()
    fast = with_widget_status(django_app)
    assert fast is not django_app
    return django_app, fast


@pytest.fixture
def shop(transactional_db):
    account = make_account(name="Shop")
    seller = make_operator(account=account, status=Status.ONLINE)
    make_group(account=account, key="sales", members=[seller])
    make_present(seller)
    return account


# --- the fast path under SECURE_HTTPS ---------------------------------------------------------


@pytest.mark.parametrize("group", [None, "sales", "nope"])
async def test_a_request_forwarded_as_https_gets_djangos_headers_with_hsts(apps, shop, group):
    django_app, fast = apps
    path = status_url(shop, group)

    django_answer = await asgi_get(django_app, path, FORWARDED_HTTPS)
    fast_answer = await asgi_get(fast, path, FORWARDED_HTTPS)

    # It should answer exactly as Django does behind the proxy, Strict-Transport-Security included.
    assert comparable(fast_answer) == comparable(django_answer)
    assert fast_answer["headers"][b"strict-transport-security"] == HSTS
    assert fast_answer["status"] == (404 if group == "nope" else 200)


async def test_a_304_forwarded_as_https_gets_djangos_headers_with_hsts(apps, shop):
    django_app, fast = apps
    etag = (await asgi_get(fast, status_url(shop), FORWARDED_HTTPS))["headers"][b"etag"]

    django_answer = await asgi_get(django_app, status_url(shop), FORWARDED_HTTPS, (b"if-none-match", etag.encode()))
    fast_answer = await asgi_get(fast, status_url(shop), FORWARDED_HTTPS, (b"if-none-match", etag.encode()))

    # It should answer the unchanged read as Django does.
    assert fast_answer["status"] == 304
    assert comparable(fast_answer) == comparable(django_answer)


@pytest.mark.parametrize(
    "forwarded", [pytest.param((), id="no-proxy-header"), pytest.param(((b"x-forwarded-proto", b"http"),), id="http")]
)
async def test_a_plain_http_request_is_left_to_django_which_redirects(apps, shop, forwarded):
    django_app, fast = apps
    path = status_url(shop, "sales")

    django_answer = await asgi_get(django_app, path, *forwarded)
    fast_answer = await asgi_get(fast, path, *forwarded)

    # It should not answer it itself: Django redirects to HTTPS, permanently.
    assert fast_answer == django_answer
    assert fast_answer["status"] == 301
    assert fast_answer["headers"][b"location"] == f"https://127.0.0.1:8000{path}"


async def test_without_the_redirect_a_plain_http_answer_carries_no_hsts(apps, shop, settings):
    settings.SECURE_SSL_REDIRECT = False
    django_app = ASGIHandler()
    fast = with_widget_status(django_app)

    django_answer = await asgi_get(django_app, status_url(shop))
    fast_answer = await asgi_get(fast, status_url(shop))

    # It should leave HSTS to secure requests, as Django does.
    assert fast_answer["status"] == 200
    assert comparable(fast_answer) == comparable(django_answer)
    assert b"strict-transport-security" not in fast_answer["headers"]


# --- another middleware stack ----------------------------------------------------------------


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_fast_path_is_on_and_unreported_with_the_expected_middleware():
    app = ASGIHandler()

    # It should wrap Django, and no check should complain.
    assert tuple(django_settings.MIDDLEWARE) == EXPECTED_MIDDLEWARE
    assert with_widget_status(app) is not app
    assert "widget.W001" not in {message.id for message in checks.run_checks()}


@pytest.mark.parametrize(
    "middleware",
    [
        pytest.param(EXPECTED_MIDDLEWARE[:-1], id="one-left-out"),
        pytest.param((*EXPECTED_MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"), id="one-added"),
        pytest.param(EXPECTED_MIDDLEWARE[1::-1] + EXPECTED_MIDDLEWARE[2:], id="reordered"),
    ],
)
@pytest.mark.django_db
def test_with_another_middleware_stack_the_fast_path_steps_aside_and_a_check_warns(settings, middleware):
    settings.MIDDLEWARE = list(middleware)
    app = ASGIHandler()

    wrapped = with_widget_status(app)

    # It should hand every request to Django itself, and say so at start-up.
    assert wrapped is app
    warnings = [message for message in checks.run_checks() if message.id == "widget.W001"]
    assert len(warnings) == 1
    assert warnings[0].level == checks.WARNING
    assert widget_asgi.fast_path_check() == warnings


# --- presence.pipeline -----------------------------------------------------------------------


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_start_up_checks_pass_with_the_pinned_versions():
    # It should find the internals the shortcuts rely on.
    assert pipeline.SUPPORTED and dispatch.SUPPORTED
    assert pipeline.pipeline_check() == []
    assert dispatch.dispatch_check() == []
    ids = {message.id for message in checks.run_checks()}
    assert not ids & {"presence.W001", "presence.W002"}


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_pipeline_check_warns_when_the_internals_changed(monkeypatch):
    monkeypatch.setattr(pipeline, "SUPPORTED", False)

    # It should warn at start-up that publishing goes one message at a time.
    assert [message.id for message in checks.run_checks() if message.id.startswith("presence.")] == ["presence.W001"]
    assert "one message at a time" in pipeline.pipeline_check()[0].msg


def test_the_pipeline_check_warns_on_an_untested_version(monkeypatch):
    monkeypatch.setattr(pipeline.channels_redis, "__version__", "5.0.0")

    # It should warn: the private parts may behave differently even when present.
    assert [message.id for message in pipeline.pipeline_check()] == ["presence.W001"]


GROUP = f"{django_settings.REDIS_PREFIX}.fast-path-test"


async def subscribed() -> tuple[object, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    return layer, channel


async def receive_all(layer, channel: str, count: int) -> list[dict]:
    async with asyncio.timeout(5):
        return [await layer.receive(channel) for _ in range(count)]


def spy_on_group_send(monkeypatch, layer) -> list[dict]:
    sent: list[dict] = []
    send = layer.group_send

    async def group_send(group: str, message: dict) -> None:
        sent.append(message)
        await send(group, message)

    monkeypatch.setattr(layer, "group_send", group_send)
    return sent


async def test_without_the_known_internals_a_batch_goes_by_group_send_and_arrives_in_order(monkeypatch):
    monkeypatch.setattr(pipeline, "SUPPORTED", False)
    layer, channel = await subscribed()
    sent = spy_on_group_send(monkeypatch, layer)
    batch = [(GROUP, {"type": "n", "n": n}) for n in range(5)]

    await sync_to_async(events.publish_many)(batch)
    received = await receive_all(layer, channel, 5)
    await layer.group_discard(GROUP, channel)

    # It should publish each message with the framework's group_send, and every one should arrive, in order.
    assert [message["n"] for message in sent] == [0, 1, 2, 3, 4]
    assert [message["n"] for message in received] == [0, 1, 2, 3, 4]


@pytest.mark.production_only
async def test_with_the_known_internals_a_batch_is_pipelined_and_arrives_in_order(monkeypatch):
    layer, channel = await subscribed()
    sent = spy_on_group_send(monkeypatch, layer)
    batch = [(GROUP, {"type": "n", "n": n}) for n in range(5)]

    await sync_to_async(events.publish_many)(batch)
    received = await receive_all(layer, channel, 5)
    await layer.group_discard(GROUP, channel)

    # It should bypass group_send (one pipeline), with the same delivery.
    assert sent == []
    assert [message["n"] for message in received] == [0, 1, 2, 3, 4]


# --- presence.dispatch -----------------------------------------------------------------------


@pytest.mark.django_db  # the model checks ask the database what it supports
def test_the_dispatch_check_warns_when_the_framework_changed(monkeypatch):
    monkeypatch.setattr(dispatch, "SUPPORTED", False)

    # It should warn at start-up that consumers use the framework's dispatch.
    assert [message.id for message in checks.run_checks() if message.id.startswith("presence.")] == ["presence.W002"]


def test_the_dispatch_support_test_notices_a_changed_framework_dispatch(monkeypatch):
    async def rewritten(self, message):  # a channels release whose dispatch does something else
        await getattr(self, consumer.get_handler_name(message))(message)

    monkeypatch.setattr(consumer.AsyncConsumer, "dispatch", rewritten)

    # It should not recognise it, so the mixin would step aside.
    assert dispatch._supported() is False


@pytest.fixture
def framework_dispatches(monkeypatch) -> list[str]:
    """The message types that went through channels' own ``AsyncConsumer.dispatch``."""
    seen: list[str] = []
    original = consumer.AsyncConsumer.dispatch

    async def spy(self, message: dict) -> None:
        seen.append(message["type"])
        await original(self, message)

    monkeypatch.setattr(consumer.AsyncConsumer, "dispatch", spy)
    return seen


async def socket_round_trip() -> tuple[dict, dict]:
    """An operator app connects, heartbeats and gets its answers."""
    operator = await db(lambda: make_operator(account=make_account()))()
    socket = Socket(token_headers(await db(make_token)(operator)))
    assert await socket.connect()
    hello = await socket.receive_until(lambda message: message["type"] == "hello")
    await socket.send({"type": "heartbeat"})
    ack = await socket.receive_until(lambda message: message["type"] == "heartbeat_ack")
    await socket.close()
    return hello, ack


@committed_db
async def test_without_the_known_dispatch_the_mixin_uses_the_frameworks(monkeypatch, framework_dispatches):
    monkeypatch.setattr(dispatch, "SUPPORTED", False)

    hello, ack = await socket_round_trip()

    # It should hand every message to channels' dispatch, and the socket should work as ever.
    assert {"websocket.connect", "websocket.receive"} <= set(framework_dispatches)
    assert (hello["type"], ack["type"]) == ("hello", "heartbeat_ack")


@committed_db
async def test_with_the_known_dispatch_the_mixin_calls_handlers_directly(framework_dispatches):
    hello, ack = await socket_round_trip()

    # It should bypass channels' dispatch (no per-message hop to close old connections).
    assert framework_dispatches == []
    assert (hello["type"], ack["type"]) == ("hello", "heartbeat_ack")
