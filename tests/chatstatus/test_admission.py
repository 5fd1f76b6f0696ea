"""Admission to Django: REQUEST_CONCURRENCY at a time, a short wait in line, then 503."""

import asyncio
import json

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from chatstatus.admission import with_admission
from chatstatus.metrics import HTTP_SHED


def _scope(path: str = "/api/v1/me", kind: str = "http") -> dict:
    return {"type": kind, "path": path, "method": "GET", "headers": []}


async def _ok(send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class Held:
    """An inner app whose HTTP requests stay in it until released (a socket
    passes straight through); it records the paths that entered."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.inside = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: dict, receive, send) -> None:
        self.entered.append(scope["path"])
        if scope["type"] != "http":
            return
        self.inside.set()
        await self.release.wait()
        await _ok(send)


async def _request(app, path: str) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    return sent


async def _the_one_slot_held() -> tuple[Held, object, asyncio.Future]:
    """A line with one slot (REQUEST_CONCURRENCY=1) in front of a Held app, the
    slot taken by a request to ``/first``: (the app, the line, that request)."""
    inner = Held()
    app = with_admission(inner)
    holder = asyncio.ensure_future(_request(app, "/first"))
    await asyncio.wait_for(inner.inside.wait(), 5)
    return inner, app, holder


def _while_the_one_slot_is_held(path: str) -> tuple[list[str], list[dict], list[dict]]:
    """A request for ``path`` while another holds the only slot: (the paths that
    reached the app, the holder's answer, the answer for ``path``)."""

    async def run():
        inner, app, holder = await _the_one_slot_held()
        answer = await asyncio.wait_for(_request(app, path), 5)
        inner.release.set()
        return inner.entered, await holder, answer

    return asyncio.run(run())


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=0.05)
def test_a_request_with_no_turn_in_time_gets_503_with_retry_after_and_never_reaches_django():
    before = HTTP_SHED._value.get()
    entered, first, (start, body) = _while_the_one_slot_is_held("/widget/v1/key/conversations")
    assert entered == ["/first"]
    assert first[0]["status"] == 200
    headers = dict(start["headers"])
    assert start["status"] == 503
    assert headers[b"retry-after"] == b"2"
    assert headers[b"access-control-allow-origin"] == b"*"  # the widget can read it
    assert json.loads(body["body"]) == {"error": "overloaded", "retry_after": 2}
    assert HTTP_SHED._value.get() == before + 1


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=0.05)
def test_a_person_at_the_dashboard_is_told_in_words():
    _entered, _first, (start, body) = _while_the_one_slot_is_held("/inbox/")
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"2"
    assert headers[b"content-type"].startswith(b"text/plain") and b"too busy" in body["body"]
    assert b"access-control-allow-origin" not in headers


@override_settings(REQUEST_CONCURRENCY=2, REQUEST_QUEUE_SECONDS=5)
def test_requests_in_line_get_their_turn_in_order_as_slots_free():
    async def run():
        order: list[str] = []
        gates = {name: asyncio.Event() for name in ("a", "b", "c", "d")}

        async def inner(scope, receive, send):
            order.append(scope["path"])
            await gates[scope["path"]].wait()
            await _ok(send)

        app = with_admission(inner)
        tasks = {name: asyncio.ensure_future(_request(app, name)) for name in gates}
        for _ in range(5):
            await asyncio.sleep(0)
        admitted_first = list(order)
        gates["b"].set()
        await asyncio.wait_for(tasks["b"], 5)
        for _ in range(5):
            await asyncio.sleep(0)
        admitted_next = list(order)
        for gate in gates.values():
            gate.set()
        answers = await asyncio.wait_for(asyncio.gather(*tasks.values()), 5)
        return admitted_first, admitted_next, order, answers

    admitted_first, admitted_next, order, answers = asyncio.run(run())
    assert admitted_first == ["a", "b"]
    assert admitted_next == ["a", "b", "c"]
    assert order == ["a", "b", "c", "d"]
    assert [answer[0]["status"] for answer in answers] == [200] * 4


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=5)
def test_a_request_whose_client_left_while_in_line_never_reaches_django_nor_takes_a_slot():
    async def run():
        inner, app, first = await _the_one_slot_held()
        gone = asyncio.ensure_future(_request(app, "/gone"))
        await asyncio.sleep(0)
        gone.cancel()  # what Daphne does when the client disconnects
        await asyncio.gather(gone, return_exceptions=True)
        inner.release.set()
        await first
        last = await asyncio.wait_for(_request(app, "/last"), 5)
        return inner.entered, last

    entered, last = asyncio.run(run())
    assert entered == ["/first", "/last"]
    assert last[0]["status"] == 200


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=5)
def test_a_request_that_fails_gives_its_slot_back():
    async def run():
        async def failing(scope, receive, send):
            if scope["path"] == "/boom":
                raise RuntimeError("boom")
            await _ok(send)

        app = with_admission(failing)
        with pytest.raises(RuntimeError):
            await _request(app, "/boom")
        return await asyncio.wait_for(_request(app, "/next"), 5)

    assert asyncio.run(run())[0]["status"] == 200


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=5)
def test_an_apps_rest_heartbeat_never_waits_in_line():
    async def run():
        inner, app, held = await _the_one_slot_held()
        inner.inside.clear()
        heartbeat = asyncio.ensure_future(_request(app, "/api/v1/me/heartbeat"))
        await asyncio.wait_for(inner.inside.wait(), 1)  # in Django while the one slot is taken
        inner.release.set()
        return inner.entered, await heartbeat, await held

    entered, heartbeat, _held = asyncio.run(run())
    assert entered == ["/first", "/api/v1/me/heartbeat"]
    assert heartbeat[0]["status"] == 200


@override_settings(REQUEST_CONCURRENCY=1, REQUEST_QUEUE_SECONDS=0.05)
def test_websockets_do_not_count():
    async def run():
        # The same line as the held request: a socket counted would wait, then be refused.
        inner, app, holder = await _the_one_slot_held()
        await asyncio.wait_for(app(_scope("/ws/widget/k/", "websocket"), None, None), 5)
        inner.release.set()
        await holder
        return inner.entered

    assert asyncio.run(run()) == ["/first", "/ws/widget/k/"]


def _admission_warnings() -> list[str]:
    return [message.id for message in run_checks() if message.id == "chatstatus.W004"]


@pytest.mark.production_only
def test_a_concurrency_that_leaves_the_sockets_no_connection_is_warned_of(settings):
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    settings.REQUEST_CONCURRENCY = pool - 1
    assert _admission_warnings() == []
    settings.REQUEST_CONCURRENCY = pool
    assert _admission_warnings() == ["chatstatus.W004"]
