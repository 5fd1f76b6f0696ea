"""/api/v1/me, /me/status, /me/heartbeat and /chat-box: an operator's own view."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.auth import session_device_tag
from accounts.models import ApiToken, Operator, Status
from presence.models import Source, StatusEvent
from presence.selectors import operator_connections, operators_present
from presence.services import presence_sweep
from presence.store import StoreUnavailable
from tests.api.conftest import session_client, token_client
from tests.factories import make_group, make_operator

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


def test_me_describes_the_operator_and_their_account(account, agent):
    make_group(account=account, key="sales", members=[agent])
    body = token_client(agent).get("/api/v1/me").json()
    assert body["id"] == agent.id
    assert body["email"] == agent.email
    assert body["display_name"] == "Alan Agent"
    assert body["role"] == "agent"
    assert body["status"] == "offline"
    assert body["groups"] == ["sales"]
    assert body["account"] == {"id": account.id, "name": account.name}
    assert body["initials"] == "AA"
    assert body["avatar_url"] is None


def test_an_avatar_is_a_path_on_this_server(agent):
    Operator.objects.filter(id=agent.id).update(avatar="avatars/alan.png")
    assert token_client(agent).get("/api/v1/me").json()["avatar_url"] == "/media/avatars/alan.png"


def test_times_are_utc_with_a_z(agent):
    body = token_client(agent).get("/api/v1/me").json()
    assert body["status_changed_at"].endswith("Z")
    assert "+00:00" not in body["status_changed_at"]


def test_an_operator_reads_their_status(agent):
    body = token_client(agent).get("/api/v1/me/status").json()
    assert body["status"] == "offline"
    assert body["status_changed_at"].endswith("Z")


@pytest.mark.parametrize(("is_mobile", "source"), [(True, Source.MOBILE), (False, Source.API)])
def test_a_token_switches_the_status_with_its_source(agent, is_mobile, source):
    client = token_client(agent, is_mobile=is_mobile)
    token = ApiToken.objects.get(operator=agent)
    response = client.put("/api/v1/me/status", {"status": "online", "device": "Pixel 9"})
    assert response.status_code == 200
    assert response.json()["status"] == "online"
    event = StatusEvent.objects.get()
    assert (event.old, event.new, event.source, event.device) == ("offline", "online", source, f"t:{token.id}")


def test_a_session_switches_the_status_as_the_api(agent):
    client = session_client(agent)
    client.put("/api/v1/me/status", {"status": "online"})
    event = StatusEvent.objects.get()
    assert event.source == Source.API
    assert event.device == session_device_tag(client.session.session_key)


def test_switching_to_the_same_status_records_nothing(agent):
    client = token_client(agent)
    client.put("/api/v1/me/status", {"status": "online"})
    response = client.put("/api/v1/me/status", {"status": "online"})
    assert response.status_code == 200
    assert response.json()["status"] == "online"
    assert StatusEvent.objects.count() == 1


def test_a_status_change_counts_as_a_heartbeat_of_the_device(agent):
    client = token_client(agent)
    token = ApiToken.objects.get(operator=agent)
    client.put("/api/v1/me/status", {"status": "online"})
    assert agent.id in operators_present(account_id=agent.account_id)
    assert [conn.device for conn in operator_connections(operator=agent)] == [f"t:{token.id}"]


def test_an_online_switch_from_a_phone_makes_the_chat_box_online(agent, django_capture_on_commit_callbacks):
    phone = token_client(agent, is_mobile=True)
    with django_capture_on_commit_callbacks(execute=True):
        phone.put("/api/v1/me/status", {"status": "online"})
    box = phone.get("/api/v1/chat-box").json()
    assert box["status"] == "online"
    assert box["reason"] == "operators_online"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"status": "away"}, "status"),
        ({"status": None}, "status"),
        ({"status": ["online"]}, "status"),
        ({"status": "online", "device": "x" * 81}, "device"),
        ({"status": "online", "device": {"a": 1}}, "device"),
    ],
)
def test_a_bad_status_is_named(agent, body, field):
    response = token_client(agent).put("/api/v1/me/status", body)
    assert response.status_code == 400
    assert field in response.json()
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE


def test_unknown_fields_are_ignored(agent):
    response = token_client(agent).put("/api/v1/me/status", {"status": "online", "colour": "green"})
    assert response.status_code == 200


# --- heartbeat -------------------------------------------------------------------------------


def test_a_heartbeat_answers_the_status_and_when_to_beat_again(agent):
    response = token_client(agent).post("/api/v1/me/heartbeat", {"device": "phone"})
    assert response.status_code == 200
    assert response.json() == {"status": "offline", "next_heartbeat_seconds": settings.PRESENCE_HEARTBEAT_SECONDS}


def test_a_heartbeat_writes_nothing_to_the_database_once_present(agent):
    client = token_client(agent)
    client.post("/api/v1/me/heartbeat", {})
    with CaptureQueriesContext(connection) as queries:
        client.post("/api/v1/me/heartbeat", {})
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []


def test_heartbeats_keep_a_phone_without_a_socket_online(agent):
    client = token_client(agent, is_mobile=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.put("/api/v1/me/status", {"status": "online"})
        for _ in range(20):
            traveller.shift(dt.timedelta(seconds=settings.PRESENCE_HEARTBEAT_SECONDS))
            client.post("/api/v1/me/heartbeat", {})
            presence_sweep()
        agent.refresh_from_db()
        assert agent.status == Status.ONLINE


def test_a_phone_that_stops_heartbeating_goes_offline_after_the_grace_period(account, agent):
    client = token_client(agent, is_mobile=True)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        client.put("/api/v1/me/status", {"status": "online"})
        traveller.shift(dt.timedelta(seconds=settings.PRESENCE_CONNECTION_TTL_SECONDS - 1))
        presence_sweep()
        agent.refresh_from_db()
        assert agent.status == Status.ONLINE
        traveller.shift(dt.timedelta(seconds=account.stale_after_seconds + 1))
        presence_sweep()
        agent.refresh_from_db()
        assert agent.status == Status.OFFLINE
        assert StatusEvent.objects.filter(source=Source.STALE_SWEEP).count() == 1


def test_a_heartbeat_without_the_presence_store_asks_to_come_again(agent, store, monkeypatch):
    monkeypatch.setattr(store, "touch", unavailable)
    response = token_client(agent).post("/api/v1/me/heartbeat", {})
    assert response.status_code == 503
    assert "detail" in response.json()


def test_a_status_switch_without_the_presence_store_is_still_stored(agent, store, monkeypatch):
    monkeypatch.setattr(store, "touch", unavailable)
    response = token_client(agent).put("/api/v1/me/status", {"status": "online"})
    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.status == Status.ONLINE


def unavailable(**kwargs):
    raise StoreUnavailable("down")


def test_a_heartbeat_device_label_may_be_left_out(agent):
    assert token_client(agent).post("/api/v1/me/heartbeat").status_code == 200


def test_a_heartbeat_with_a_bad_device_label_is_named(agent):
    response = token_client(agent).post("/api/v1/me/heartbeat", {"device": "x" * 500})
    assert response.status_code == 400
    assert "device" in response.json()


# --- chat box ---------------------------------------------------------------------------------


def test_the_chat_box_answer_has_every_group(account, agent):
    make_group(account=account, key="sales", members=[agent])
    make_group(account=account, key="support")
    body = token_client(agent).get("/api/v1/chat-box").json()
    assert set(body) == {"status", "reason", "groups", "version", "next_change_at"}
    assert set(body["groups"]) == {"sales", "support"}
    assert body["groups"]["sales"] == {"status": "offline", "reason": "no_operator_online", "next_change_at": None}
    assert isinstance(body["version"], int)


def test_the_chat_box_follows_an_available_operator(account, agent, django_capture_on_commit_callbacks):
    make_group(account=account, key="sales", members=[agent])
    client = token_client(agent)
    with django_capture_on_commit_callbacks(execute=True):
        client.put("/api/v1/me/status", {"status": "online"})
    body = client.get("/api/v1/chat-box").json()
    assert body["groups"]["sales"]["status"] == "online"
    # Operators in groups count for their groups only (§3).
    assert body["status"] == "offline"


def test_another_accounts_chat_box_is_never_shown(account, stranger, django_capture_on_commit_callbacks):
    colleague = make_operator(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        token_client(colleague).put("/api/v1/me/status", {"status": "online"})
    assert token_client(colleague).get("/api/v1/chat-box").json()["status"] == "online"
    assert token_client(stranger).get("/api/v1/chat-box").json()["status"] == "offline"
