"""A phone app and a dashboard of the same operator, from switch-on to logout."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import ApiToken, Status
from chatstatus.asgi import router
from presence.consumers import CLOSE_LOGGED_OUT
from presence.models import Source, StatusEvent
from tests.api.conftest import token_client
from tests.factories import make_account, make_operator

WAIT = 5


async def next_message_of(communicator: WebsocketCommunicator, kind: str) -> dict:
    """The next message of one type; others (chat box updates) are passed over."""
    async with asyncio.timeout(WAIT):
        while True:
            message = json.loads(await communicator.receive_from(timeout=WAIT))
            if message["type"] == kind:
                return message


async def dashboard_of(operator) -> tuple[WebsocketCommunicator, Client]:
    """A dashboard's operator socket: a browser session's cookie, same origin."""
    browser = Client()
    await sync_to_async(browser.force_login)(operator)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(
        router,
        "/ws/operator/",
        headers=[(b"cookie", cookie), (b"origin", b"http://testserver"), (b"host", b"testserver")],
    )
    connected, _code = await socket.connect(timeout=WAIT)
    assert connected
    assert (await next_message_of(socket, "hello"))["operator"]["id"] == operator.id
    return socket, browser


async def closing_code(communicator: WebsocketCommunicator) -> int:
    async with asyncio.timeout(WAIT):
        while True:
            output = await communicator.receive_output(timeout=WAIT)
            if output["type"] == "websocket.close":
                return output["code"]


@sync_to_async
def status_of(operator) -> str:
    operator.refresh_from_db(fields=["status"])
    return operator.status


@pytest.mark.django_db(transaction=True)
async def test_a_phone_and_a_dashboard_share_one_status_until_the_last_logout():
    account = await sync_to_async(make_account)()
    operator = await sync_to_async(make_operator)(account=account)
    colleague = await sync_to_async(make_operator)(account=account)
    phone = await sync_to_async(token_client)(operator, device="Pixel", is_mobile=True)
    dashboard, browser = await dashboard_of(operator)
    colleagues_dashboard, _ = await dashboard_of(colleague)

    # The phone switches online over REST; the dashboard hears it, from the phone.
    response = await sync_to_async(phone.put)("/api/v1/me/status", {"status": "online"})
    assert response.status_code == 200
    heard = await next_message_of(dashboard, "operator_status")
    assert heard == {"type": "operator_status", "operator_id": operator.id, "status": "online", "source": "mobile"}
    assert await next_message_of(colleagues_dashboard, "operator_status") == heard

    # The phone logs out while the dashboard is still connected: still online.
    assert (await sync_to_async(phone.post)("/api/v1/auth/logout")).status_code == 204
    assert await status_of(operator) == Status.ONLINE
    assert not await ApiToken.objects.filter(operator=operator).aexists()
    assert (await sync_to_async(phone.get)("/api/v1/me")).status_code == 401

    # The dashboard logs out: it was the last device, so offline at once.
    assert (await sync_to_async(browser.post)("/api/v1/auth/logout")).status_code == 204
    assert await status_of(operator) == Status.OFFLINE
    heard = await next_message_of(colleagues_dashboard, "operator_status")
    assert heard == {"type": "operator_status", "operator_id": operator.id, "status": "offline", "source": "logout"}
    last = await StatusEvent.objects.filter(operator=operator).order_by("-at", "-id").afirst()
    assert (last.new, last.source) == (Status.OFFLINE, Source.LOGOUT)
    # The logged-out session's own socket is closed by the server.
    assert await closing_code(dashboard) == CLOSE_LOGGED_OUT
    await colleagues_dashboard.disconnect()
