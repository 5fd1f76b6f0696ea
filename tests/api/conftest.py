"""Fixtures for the REST API tests: JSON clients authenticated as someone."""

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.throttles import LoginRateThrottle
from tests.conversations.conftest import clock, published  # noqa: F401 (fixtures)
from tests.factories import make_account, make_operator, make_token, owner_of

# Addresses the test clients come from (Django's test client; an ASGI client).
CLIENT_ADDRESSES = ("127.0.0.1", "testclient", "unknown")


def login_throttle_keys() -> list[str]:
    return [LoginRateThrottle.cache_format % {"scope": "login", "ident": address} for address in CLIENT_ADDRESSES]


@pytest.fixture(autouse=True)
def fresh_login_throttle():
    """Every test starts with no login attempts counted (the cache outlives tests)."""
    cache.delete_many(login_throttle_keys())
    yield
    cache.delete_many(login_throttle_keys())


@pytest.fixture(autouse=True)
def fresh_reply_throttle(clean_store):
    """Every test starts with no operator replies counted. In production mode
    they live under the test's Redis prefix, which ``clean_store`` empties; the
    embedded mode's memory cache outlives tests, and SQLite hands a later
    test's operator the same id."""
    if settings.EMBEDDED:
        cache.clear()


class JsonClient(APIClient):
    """An API client that always sends JSON."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.default_format = "json"


def token_client(operator, *, device: str = "phone", is_mobile: bool = False) -> JsonClient:
    client = JsonClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(operator, device=device, is_mobile=is_mobile)}")
    return client


def session_client(operator) -> JsonClient:
    client = JsonClient()
    client.force_login(operator)
    return client


@pytest.fixture
def anonymous() -> JsonClient:
    return JsonClient()


@pytest.fixture
def account(db):
    return make_account()


@pytest.fixture
def owner(account):
    return owner_of(account)


@pytest.fixture
def admin(account):
    return make_operator(account=account, role="admin", name="Ada Admin")


@pytest.fixture
def agent(account):
    return make_operator(account=account, role="agent", name="Alan Agent")


@pytest.fixture
def other_account(db):
    return make_account(name="Elsewhere")


@pytest.fixture
def stranger(other_account):
    """The owner of another account."""
    return owner_of(other_account)


@pytest.fixture
def as_owner(owner) -> JsonClient:
    return token_client(owner)


@pytest.fixture
def as_admin(admin) -> JsonClient:
    return token_client(admin)


@pytest.fixture
def as_agent(agent) -> JsonClient:
    return token_client(agent)


@pytest.fixture
def as_stranger(stranger) -> JsonClient:
    return token_client(stranger)
