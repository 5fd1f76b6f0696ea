"""/healthz, /readyz and /metrics in front of Django; what the edge counts (chatstatus/health.py, edgemetrics.py)."""

import json
import logging

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator

from chatstatus import health
from chatstatus.asgi import application
from chatstatus.metrics import OPEN_SOCKETS
from tests.factories import make_account

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "a-metrics-token-that-is-long-enough-0123"


async def get(path: str, *, client: str = "198.51.100.7", headers: list | None = None, method: str = "GET"):
    communicator = HttpCommunicator(application, method, path, headers=[(b"host", b"x"), *(headers or [])])
    communicator.scope["client"] = (client, 40000)
    return await communicator.get_response(timeout=10)


async def test_healthz_answers_without_looking_at_anything():
    response = await get("/healthz")

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}


async def test_readyz_names_what_is_not_reachable_and_nothing_else(monkeypatch):
    ready = await get("/readyz")

    def down() -> None:
        raise ConnectionError("redis://secret-host:6379 refused")

    monkeypatch.setitem(health.CHECKS, "store", down)
    not_ready = await get("/readyz")

    assert ready["status"] == 200 and json.loads(ready["body"]) == {"status": "ready"}
    assert not_ready["status"] == 503
    # It should name the store, and say nothing of hosts or errors.
    assert json.loads(not_ready["body"]) == {"status": "unavailable", "failing": ["store"]}


async def test_the_probes_answer_head_and_refuse_other_methods():
    head = await get("/healthz", method="HEAD")
    post = await get("/readyz", method="POST")

    assert head["status"] == 200 and head["body"] == b""
    assert post["status"] == 405


async def test_metrics_are_refused_to_everyone_unless_the_configuration_names_them(settings):
    settings.METRICS_TOKEN = None
    settings.METRICS_ALLOW_FROM = ()

    refused = await get("/metrics", client="127.0.0.1")

    assert refused["status"] == 403
    assert b"chatstatus" not in refused["body"]


async def test_metrics_for_an_allowed_address_or_the_bearer_token(settings):
    from ipaddress import ip_network

    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW_FROM = (ip_network("10.0.0.0/8"),)

    by_address = await get("/metrics", client="10.1.2.3")
    by_token = await get("/metrics", headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
    wrong_token = await get("/metrics", headers=[(b"authorization", b"Bearer nope")])

    assert by_address["status"] == 200 and by_token["status"] == 200
    assert wrong_token["status"] == 403
    text = by_token["body"].decode()
    for name in (
        "chatstatus_open_sockets",
        "chatstatus_heartbeats_total",
        "chatstatus_pushes_published_total",
        "chatstatus_publish_seconds",
        "chatstatus_sweep_seconds",
        "chatstatus_operators_swept_total",
        "chatstatus_publish_failures_total",
        "chatstatus_publish_retries_total",
        "chatstatus_store_errors_total",
        "chatstatus_http_responses_total",
        "chatstatus_db_queries_total",
        "chatstatus_automatic_message_timers_due_total",
        "chatstatus_automatic_message_timers_fired_total",
    ):
        assert f"# HELP {name} " in text, name


async def test_open_widget_sockets_are_counted_while_they_are_open():
    from channels.db import database_sync_to_async

    account = await database_sync_to_async(make_account)()
    gauge = OPEN_SOCKETS.labels(kind="widget")
    before = gauge._value.get()
    communicator = WebsocketCommunicator(application, f"/ws/widget/{account.widget_key}/")
    communicator.scope["client"] = ("198.51.100.8", 40000)
    await communicator.connect()
    await communicator.receive_json_from(timeout=5)
    while_open = gauge._value.get()
    await communicator.disconnect()
    await communicator.wait(timeout=5)

    assert while_open == before + 1
    assert gauge._value.get() == before


def test_json_logs_hold_only_the_fixed_fields(caplog):
    from chatstatus.logs import JsonLogFormatter

    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/x/",), None)
    record.request = object()  # what django.request passes: never written
    record.password = "s3cret"

    line = json.loads(JsonLogFormatter().format(record))

    assert set(line) == {"time", "level", "logger", "message"}
    assert line["message"] == "Not Found: /x/"


async def test_every_log_line_of_a_request_carries_its_id():
    from asgiref.testing import ApplicationCommunicator

    from chatstatus.logs import JsonLogFormatter, with_request_id

    lines = []

    async def app(scope, receive, send):
        record = logging.LogRecord("chatstatus.test", logging.INFO, __file__, 1, "answering", (), None)
        lines.append(json.loads(JsonLogFormatter().format(record)))

    for headers in ([(b"x-request-id", b"nginx-1234")], [(b"x-request-id", b"bad id\n{}")], []):
        scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
        communicator = ApplicationCommunicator(with_request_id(app), scope)
        await communicator.send_input({"type": "http.request"})
        await communicator.wait(timeout=1)

    # It should keep a proxy's well-formed id and make one up otherwise.
    assert lines[0]["request_id"] == "nginx-1234"
    assert len(lines[1]["request_id"]) == 32 and len(lines[2]["request_id"]) == 32
