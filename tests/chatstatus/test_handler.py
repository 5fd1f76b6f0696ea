"""Django's requests in one crossing to their thread (chatstatus.handler)."""

import gc
import logging
from collections import Counter

import asgiref.sync
import pytest
from channels.testing import HttpCommunicator
from django.core.checks.registry import registry
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings
from django.urls import path

from chatstatus import handler
from chatstatus.handler import OneHopASGIHandler, asgi_handler


def _broken(request):
    raise RuntimeError("broken view")


urlpatterns = [path("broken/", _broken)]


@pytest.fixture
def crossings(monkeypatch) -> Counter:
    """How often a request crossed from the event loop to a thread (sync) and back (async)."""
    counted: Counter = Counter()
    to_thread, to_loop = asgiref.sync.SyncToAsync.__call__, asgiref.sync.AsyncToSync.__call__

    async def sync_call(self, *args, **kwargs):
        counted["to thread"] += 1
        return await to_thread(self, *args, **kwargs)

    def async_call(self, *args, **kwargs):
        counted["to loop"] += 1
        return to_loop(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", sync_call)
    monkeypatch.setattr(asgiref.sync.AsyncToSync, "__call__", async_call)
    return counted


async def _get(app, url: str) -> dict:
    return await HttpCommunicator(app, "GET", url, headers=[(b"host", b"testserver")]).get_response(timeout=10)


@pytest.mark.django_db(transaction=True)
async def test_a_page_crosses_to_its_thread_once(crossings):
    response = await _get(OneHopASGIHandler(), "/login/")
    assert response["status"] == 200
    # The middleware and the view in one crossing, the response's close in another
    # (request_started's receivers too, when they are sync); none back to the loop.
    assert crossings["to loop"] == 0
    assert crossings["to thread"] <= 3


@pytest.mark.django_db(transaction=True)
async def test_djangos_own_handler_crosses_more(crossings):
    # What the test above tells apart: the same page through Django's handler.
    response = await _get(ASGIHandler(), "/login/")
    assert response["status"] == 200
    assert crossings["to loop"] >= 1
    assert crossings["to thread"] >= 5, crossings


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=__name__)
async def test_errors_are_answered_and_logged_as_django_does(caplog):
    app = OneHopASGIHandler()
    with caplog.at_level(logging.WARNING, logger="django.request"):
        missing = await _get(app, "/nowhere/")
        broken = await _get(app, "/broken/")
    assert missing["status"] == 404
    assert broken["status"] == 500
    logged = {(record.levelname, record.getMessage()) for record in caplog.records if record.name == "django.request"}
    assert ("WARNING", "Not Found: /nowhere/") in logged
    assert ("ERROR", "Internal Server Error: /broken/") in logged


def test_the_handler_and_its_check(monkeypatch):
    assert isinstance(asgi_handler(), OneHopASGIHandler)
    assert handler.handler_check() == []
    assert handler.handler_check in registry.get_checks()
    monkeypatch.setattr(handler, "supported", lambda: False)
    fallback = asgi_handler()
    assert type(fallback) is ASGIHandler
    assert [message.id for message in handler.handler_check()] == ["chatstatus.W005"]


def test_start_up_objects_are_frozen_and_full_collections_rarer():
    from chatstatus import asgi

    assert gc.get_freeze_count() > 10_000
    assert gc.get_threshold() == asgi.GC_THRESHOLDS
    assert asgi.GC_THRESHOLDS[2] > 10  # Python's default
