"""The operator socket on the real ASGI router: several devices of one operator,
colleagues watching, logouts and the grace period (travelled, never slept)."""

import asyncio
import threading
from dataclasses import dataclass

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.auth import session_device_tag, token_create, token_device_tag
from accounts.models import Account, Operator, Status
from presence import services
from presence.consumers import CLOSE_FORBIDDEN_ORIGIN, CLOSE_LOGGED_OUT, CLOSE_TOO_BIG, CLOSE_UNAUTHENTICATED
from presence.models import Source, StatusEvent
from presence.selectors import operators_present
from tests.factories import make_account, make_operator
from tests.presence.conftest import Socket, committed_db, is_status, session_headers, session_key_of, token_headers

GRACE = 120

pytestmark = committed_db


@dataclass
class Team:
    account: Account
    alice: Operator
    colleague: Operator
    laptop: list  # Alice's dashboard (session cookie)
    phone: list  # Alice's mobile app (token header)
    phone_device: str
    colleague_laptop: list

    @property
    def laptop_device(self) -> str:
        return session_device_tag(session_key_of(self.laptop))


@pytest.fixture
def team(transactional_db) -> Team:
    account = make_account(stale_after_seconds=GRACE)
    alice = make_operator(account=account, name="Alice")
    colleague = make_operator(account=account, name="Bob")
    key, token = token_create(operator=alice, device="Alice's phone", is_mobile=True)
    return Team(
        account=account,
        alice=alice,
        colleague=colleague,
        laptop=session_headers(alice),
        phone=token_headers(key),
        phone_device=token_device_tag(token),
        colleague_laptop=session_headers(colleague),
    )


async def connected(headers: list) -> Socket:
    socket = Socket(headers)
    assert await socket.connect()
    assert (await socket.receive_until(lambda m: m["type"] == "hello"))["type"] == "hello"
    return socket


@database_sync_to_async
def status_of(operator: Operator) -> str:
    return Operator.objects.values_list("status", flat=True).get(id=operator.id)


@database_sync_to_async
def events_of(operator: Operator) -> list[tuple[str, str, str]]:
    return list(StatusEvent.objects.filter(operator=operator).order_by("at", "id").values_list("old", "new", "source"))


sweep = database_sync_to_async(services.presence_sweep)


async def test_the_hello_carries_the_operator_and_the_chat_box(team):
    socket = Socket(team.phone)
    assert await socket.connect()
    hello = await socket.receive()
    await socket.close()
    assert hello["type"] == "hello"
    assert hello["operator"]["id"] == team.alice.id
    assert hello["operator"]["status"] == "offline"
    assert hello["chat_box"]["status"] == "offline"
    assert hello["chat_box"]["reason"] == "no_operator_online"
    assert isinstance(hello["chat_box"]["version"], int)


async def test_a_chat_box_push_older_than_what_the_socket_has_is_not_sent(team):
    from channels.layers import get_channel_layer

    from presence import events

    socket = Socket(team.phone)
    assert await socket.connect()
    hello = await socket.receive()
    box = hello["chat_box"]
    group = events.account_group(team.account.id)

    async def push(version: int, status: str) -> None:
        snapshot = {**box, "status": status, "version": version}
        await get_channel_layer().group_send(group, {"type": "operator.chat_box", "snapshot": snapshot})

    # Two processes published close together: the older push arrives last.
    await push(box["version"] + 2, "online")
    await push(box["version"] + 1, "offline")
    await push(box["version"] + 2, "online")  # a resync of what it has

    newest = await socket.receive()
    assert (newest["type"], newest["status"], newest["version"]) == ("chat_box", "online", box["version"] + 2)
    assert await socket.nothing_more()
    await socket.close()


async def test_a_status_set_on_one_device_arrives_on_the_other(team):
    laptop, phone = await connected(team.laptop), await connected(team.phone)

    await laptop.send({"type": "set_status", "status": "online"})
    assert await phone.receive_until(lambda m: m["type"] == "operator_status") == {
        "type": "operator_status",
        "operator_id": team.alice.id,
        "status": "online",
        "source": "dashboard",
    }
    assert (await phone.receive_until(lambda m: m["type"] == "chat_box"))["status"] == "online"

    await phone.send({"type": "set_status", "status": "offline"})
    from_phone = await laptop.receive_until(is_status(team.alice.id, "offline"))
    assert from_phone["source"] == "mobile"
    await laptop.close()
    await phone.close()
    assert await events_of(team.alice) == [("offline", "online", "dashboard"), ("online", "offline", "mobile")]


async def test_a_colleague_sees_the_change_too(team):
    laptop, colleague = await connected(team.laptop), await connected(team.colleague_laptop)
    await laptop.send({"type": "set_status", "status": "online"})
    assert (await colleague.receive_until(lambda m: m["type"] == "operator_status"))["operator_id"] == team.alice.id
    assert (await colleague.receive_until(lambda m: m["type"] == "chat_box"))["status"] == "online"
    await laptop.close()
    await colleague.close()


async def test_closing_one_device_keeps_the_operator_online_and_closing_both_sweeps_after_grace(team):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        laptop, phone = await connected(team.laptop), await connected(team.phone)
        colleague = await connected(team.colleague_laptop)
        widget = Socket([], path=f"/ws/widget/{team.account.widget_key}/")
        assert await widget.connect()
        assert (await widget.receive())["status"] == "offline"
        await laptop.send({"type": "set_status", "status": "online"})
        await colleague.receive_until(is_status(team.alice.id, "online"))
        assert (await colleague.receive_until(lambda m: m["type"] == "chat_box"))["status"] == "online"
        assert (await widget.receive())["status"] == "online"

        await laptop.close()
        clock.shift(GRACE + 1)
        await phone.send({"type": "heartbeat"})
        await phone.receive_until(lambda m: m["type"] == "heartbeat_ack")
        assert await sweep() == 0
        assert await status_of(team.alice) == "online"

        await phone.close()
        clock.shift(GRACE - 1)
        assert await sweep() == 0
        assert await status_of(team.alice) == "online"
        assert await colleague.nothing_more()
        assert await widget.nothing_more()

        clock.shift(1)
        assert await sweep() == 1
        pushed = await colleague.receive_until(lambda m: m["type"] == "operator_status")
        assert pushed == {
            "type": "operator_status",
            "operator_id": team.alice.id,
            "status": "offline",
            "source": "stale_sweep",
        }
        box = await colleague.receive_until(lambda m: m["type"] == "chat_box")
        assert (box["status"], box["reason"]) == ("offline", "no_operator_online")
        visitor_sees = await widget.receive()
        assert (visitor_sees["type"], visitor_sees["status"]) == ("status", "offline")
        assert visitor_sees["version"] == box["version"]
        await colleague.close()
        await widget.close()
    assert await events_of(team.alice) == [("offline", "online", "dashboard"), ("online", "offline", "stale_sweep")]


async def test_a_status_change_stuck_on_the_store_holds_back_no_heartbeat_sent_after_it(team, monkeypatch):
    # A status change can take long: its chat box refresh waits for a frozen
    # Redis, then for its retries. The app keeps heartbeating meanwhile; those
    # heartbeats must reach the store, or the sweep switches it offline.
    set_status, unfrozen = services.operator_set_status, threading.Event()

    def set_status_then_wait_for_the_store(**kwargs: object) -> bool:
        changed = set_status(**kwargs)
        unfrozen.wait(timeout=30)
        return changed

    heard = asyncio.Event()
    heartbeat = services.apresence_heartbeat

    async def heartbeat_heard(**kwargs: object) -> None:
        await heartbeat(**kwargs)
        heard.set()

    # The one sync thread is taken by the stuck change: this sweep runs beside it.
    sweep_beside = database_sync_to_async(services.presence_sweep, thread_sensitive=False)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        phone = await connected(team.phone)
        monkeypatch.setattr(services, "operator_set_status", set_status_then_wait_for_the_store)
        monkeypatch.setattr(services, "apresence_heartbeat", heartbeat_heard)
        try:
            await phone.send({"type": "set_status", "status": "online"})
            await phone.receive_until(is_status(team.alice.id, "online"))
            clock.shift(GRACE - 10)
            heard.clear()
            await phone.send({"type": "heartbeat"})
            await asyncio.wait_for(heard.wait(), timeout=5)
            clock.shift(20)  # past the presence the heartbeats before the change gave
            assert await sweep_beside() == 0
        finally:
            unfrozen.set()
        # Answers still come in order: the heartbeat's after the status change's end.
        await phone.receive_until(lambda m: m["type"] == "heartbeat_ack")
        await phone.close()
    assert await status_of(team.alice) == "online"
    assert await events_of(team.alice) == [("offline", "online", "mobile")]


async def test_connecting_devices_never_switches_an_operator_online(team):
    laptop = await connected(team.laptop)
    phone = Socket(team.phone)
    assert await phone.connect()
    hello = await phone.receive()
    await laptop.close()
    await phone.close()
    assert hello["operator"]["status"] == "offline"
    assert await status_of(team.alice) == "offline"
    assert await events_of(team.alice) == []


# --- logout -----------------------------------------------------------------------------------


async def test_logging_out_one_device_while_another_is_live_changes_nothing(team):
    laptop, phone = await connected(team.laptop), await connected(team.phone)
    colleague = await connected(team.colleague_laptop)
    await phone.send({"type": "set_status", "status": "online"})
    for socket in (laptop, phone, colleague):
        await socket.receive_until(lambda m: m["type"] == "chat_box")

    went_offline = await database_sync_to_async(services.operator_logout)(
        operator=team.alice, device=team.laptop_device
    )
    assert went_offline is False
    assert await laptop.closed_with() == CLOSE_LOGGED_OUT
    await laptop.close()
    assert await phone.nothing_more()
    assert await colleague.nothing_more()
    assert await status_of(team.alice) == "online"
    assert await events_of(team.alice) == [("offline", "online", "mobile")]
    await phone.close()
    await colleague.close()


async def test_logging_out_the_last_device_switches_offline_at_once(team):
    laptop, phone = await connected(team.laptop), await connected(team.phone)
    colleague = await connected(team.colleague_laptop)
    await laptop.send({"type": "set_status", "status": "online"})
    await colleague.receive_until(lambda m: m["type"] == "chat_box")
    await phone.close()  # closed, so within its grace period: not a live device

    went_offline = await database_sync_to_async(services.operator_logout)(
        operator=team.alice, device=team.laptop_device
    )
    assert went_offline is True
    assert await laptop.closed_with() == CLOSE_LOGGED_OUT
    await laptop.close()  # the socket's own disconnect must not bring Alice back
    pushed = await colleague.receive_until(lambda m: m["type"] == "operator_status")
    assert (pushed["status"], pushed["source"]) == ("offline", "logout")
    box = await colleague.receive_until(lambda m: m["type"] == "chat_box")
    assert box["status"] == "offline"
    await colleague.close()
    assert await events_of(team.alice) == [("offline", "online", "dashboard"), ("online", "offline", "logout")]
    present = await database_sync_to_async(operators_present)(account_id=team.account.id)
    assert team.alice.id not in present


async def test_a_logout_closes_every_socket_of_that_device_and_no_other(team):
    tab1, tab2 = await connected(team.laptop), await connected(team.laptop)
    phone = await connected(team.phone)
    await database_sync_to_async(services.operator_logout)(operator=team.alice, device=team.phone_device)
    assert await phone.closed_with() == CLOSE_LOGGED_OUT
    assert await tab1.nothing_more()
    assert await tab2.nothing_more()
    await database_sync_to_async(services.operator_logout)(operator=team.alice, device=team.laptop_device)
    assert await tab1.closed_with() == CLOSE_LOGGED_OUT
    assert await tab2.closed_with() == CLOSE_LOGGED_OUT
    for socket in (tab1, tab2, phone):
        await socket.close()


# --- who may connect ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("http://testserver", True),
        ("https://testserver", True),
        ("http://evil.example", False),
        ("http://testserver.evil.example", False),
        ("null", False),
        ("", False),
    ],
)
async def test_a_dashboard_socket_must_come_from_our_own_pages(team, origin, accepted):
    headers = _without_origin(team.laptop)
    socket = Socket([*headers, (b"origin", origin.encode())] if origin else headers)
    assert await socket.connect() is accepted
    if accepted:
        await socket.close()
    else:
        assert socket.close_code == CLOSE_FORBIDDEN_ORIGIN


def _without_origin(headers: list) -> list:
    return [(name, value) for name, value in headers if name != b"origin"]


async def test_an_app_socket_needs_no_origin_but_a_valid_token(team):
    with_origin = Socket([*team.phone, (b"origin", b"http://anywhere.example")])
    assert await with_origin.connect()
    await with_origin.close()

    bad = Socket(token_headers("not-a-token"))
    assert await bad.connect() is False
    assert bad.close_code == CLOSE_UNAUTHENTICATED


async def test_an_anonymous_socket_is_refused(team):
    socket = Socket([(b"origin", b"http://testserver"), (b"host", b"testserver")])
    assert await socket.connect() is False
    assert socket.close_code == CLOSE_UNAUTHENTICATED


async def test_a_deactivated_operators_token_is_refused(team):
    await database_sync_to_async(Operator.objects.filter(id=team.alice.id).update)(is_active=False)
    socket = Socket(team.phone)
    assert await socket.connect() is False
    assert socket.close_code == CLOSE_UNAUTHENTICATED


# --- what the client may send ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("{not json", "invalid_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('["heartbeat"]', "unknown_type"),
        ('{"type": "set_status", "status": "away"}', "invalid_status"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_changes_nothing(team, frame, error):
    socket = await connected(team.phone)
    await socket.comm.send_to(text_data=frame)
    assert await socket.receive_until(lambda m: m["type"] == "error") == {"type": "error", "error": error}
    await socket.close()
    assert await status_of(team.alice) == "offline"


async def test_an_oversized_frame_closes_the_socket(team):
    socket = await connected(team.phone)
    await socket.comm.send_to(text_data='{"type": "heartbeat", "pad": "' + "x" * 70_000 + '"}')
    assert await socket.closed_with() == CLOSE_TOO_BIG
    await socket.close()


async def test_set_status_over_the_socket_records_the_device(team):
    phone = await connected(team.phone)
    await phone.send({"type": "set_status", "status": "online"})
    await phone.receive_until(lambda m: m["type"] == "operator_status")
    await phone.close()
    event = await database_sync_to_async(StatusEvent.objects.get)(operator=team.alice)
    assert (event.source, event.device) == (Source.MOBILE, team.phone_device)
    assert await status_of(team.alice) == Status.ONLINE
