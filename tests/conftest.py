import inspect
import socket

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from chatstatus import adb
from presence.store import get_store


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    # A missing service is a failure, never a silent skip.
    if settings.EMBEDDED:
        return
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379)):
        if not _reachable("127.0.0.1", port):
            pytest.exit(f"{name} is not reachable on 127.0.0.1:{port}; start it (see README)", returncode=3)


@pytest.fixture(autouse=True)
def clean_store():
    """Every test starts with an empty presence store."""
    store = get_store()
    store.reset()
    yield store
    store.reset()


@pytest.fixture
def store(clean_store):
    return clean_store


@pytest.fixture
async def _adb_pool_closed():
    yield
    await adb.close_all()
    # And Django's connections of the one thread in which ``sync_to_async``
    # runs an async test's database calls: no request's end closes them, and
    # the test database could not be dropped while they are open.
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def adb_pool_closed(request):
    """A request an async test sends through the ASGI application may open
    ``chatstatus.adb``'s pool (and a Django connection in asgiref's sync
    thread) in the test's event loop: closed in that loop,
    before the loop ends (its connections must not outlive the test
    database). Pools of loops already gone (a test client's own loop) are
    closed at the connection level."""
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("_adb_pool_closed")
    yield
    if not inspect.iscoroutinefunction(request.function):
        adb.close_everywhere()  # a sync test's client may run its own loop in a thread
