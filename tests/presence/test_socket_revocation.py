"""Revocation reaches the open doors: a password changed on one browser closes
the operator's other sockets at once and revokes their tokens, and a
deactivated then reactivated operator's old token and session stay dead."""

from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.auth import token_create
from accounts.models import Operator
from accounts.services import operator_set_password, operator_update
from presence.consumers import CLOSE_LOGGED_OUT, CLOSE_UNAUTHENTICATED
from tests.factories import PASSWORD, make_account, make_operator
from tests.presence.conftest import Socket, committed_db, is_status, token_headers

NEW_PASSWORD = "an0ther-Pass-phrase"

# The dashboard and API are asked too: their apps (templates, DRF) must be there.
pytestmark = pytest.mark.django_db(
    transaction=True,
    available_apps=[*committed_db.kwargs["available_apps"], "django.contrib.messages", "dashboard", "api"],
)


@dataclass
class Alice:
    operator: Operator
    browser_a: Client  # the browser left open, with a socket
    browser_b: Client  # the browser she changes the password on
    token_key: str  # her phone's API token


def socket_headers(client: Client) -> list:
    """A dashboard socket of the browser ``client`` is (its session cookie)."""
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"host", b"testserver"),
        (b"origin", b"http://testserver"),
    ]


def logged_in(operator: Operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def alice() -> Alice:
    operator = make_operator(account=make_account(), name="Alice")
    key = token_create(operator=operator, device="Alice's phone", is_mobile=True)[0]
    return Alice(operator=operator, browser_a=logged_in(operator), browser_b=logged_in(operator), token_key=key)


async def connected(headers: list) -> Socket:
    socket = Socket(headers)
    assert await socket.connect()
    await socket.receive_until(lambda m: m["type"] == "hello")
    return socket


@database_sync_to_async
def change_password_on(browser: Client) -> None:
    response = browser.post(
        reverse("dashboard:profile"),
        {"form": "password", "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content


@database_sync_to_async
def sent_to_login(browser: Client) -> bool:
    response = browser.get(reverse("dashboard:overview"))
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


@database_sync_to_async
def me_status_code(token_key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    return api.get("/api/v1/me").status_code


async def test_it_closes_the_other_browsers_socket_when_the_password_changes_and_keeps_this_ones(alice):
    socket_a = await connected(socket_headers(alice.browser_a))
    socket_b = await connected(socket_headers(alice.browser_b))

    await change_password_on(alice.browser_b)

    # It should close browser A's socket at once, and leave browser B's open and working.
    assert await socket_a.closed_with() == CLOSE_LOGGED_OUT
    assert await socket_b.nothing_more()
    await socket_b.send({"type": "set_status", "status": "online"})
    assert await socket_b.receive_until(is_status(alice.operator.id, "online"))
    await socket_a.close()
    await socket_b.close()
    assert await sent_to_login(alice.browser_a)
    assert not await sent_to_login(alice.browser_b)


async def test_it_revokes_the_tokens_and_closes_their_sockets_when_the_password_changes(alice):
    assert await me_status_code(alice.token_key) == 200
    phone = await connected(token_headers(alice.token_key))

    await change_password_on(alice.browser_b)

    # It should close the phone's socket and refuse its token from now on.
    assert await phone.closed_with() == CLOSE_LOGGED_OUT
    await phone.close()
    assert await me_status_code(alice.token_key) == 401
    refused = Socket(token_headers(alice.token_key))
    assert await refused.connect() is False
    assert refused.close_code == CLOSE_UNAUTHENTICATED
    await refused.close()  # lets its application finish: no database connection left behind


async def test_a_password_set_by_site_staff_closes_every_socket_of_theirs(alice):
    sockets = [await connected(socket_headers(browser)) for browser in (alice.browser_a, alice.browser_b)]
    sockets.append(await connected(token_headers(alice.token_key)))

    await database_sync_to_async(operator_set_password)(operator=alice.operator, password=NEW_PASSWORD)

    # It should keep no device: the admin changed it for someone else.
    for socket in sockets:
        assert await socket.closed_with() == CLOSE_LOGGED_OUT
        await socket.close()


async def test_after_deactivate_and_reactivate_the_old_token_and_session_are_refused(alice):
    assert await me_status_code(alice.token_key) == 200
    assert not await sent_to_login(alice.browser_a)

    await database_sync_to_async(operator_update)(operator=alice.operator, is_active=False)
    await database_sync_to_async(operator_update)(operator=alice.operator, is_active=True)

    # It should answer the old token with 401 and send the old session to the login page.
    assert await me_status_code(alice.token_key) == 401
    assert await sent_to_login(alice.browser_a)
    refused = Socket(socket_headers(alice.browser_b))
    assert await refused.connect() is False
    assert refused.close_code == CLOSE_UNAUTHENTICATED
    await refused.close()  # lets its application finish: no database connection left behind
