"""POST /api/v1/auth/token and /api/v1/auth/logout."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from accounts.auth import session_device_tag, token_device_tag
from accounts.models import ApiToken, Operator, Status
from presence.models import Source, StatusEvent
from presence.selectors import operator_connections, operators_present
from presence.services import presence_heartbeat
from tests.api.conftest import JsonClient, session_client, token_client
from tests.factories import PASSWORD, make_operator

TOKEN = "/api/v1/auth/token"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"


def devices_of(operator) -> set[str]:
    return {conn.device for conn in operator_connections(operator=operator)}


def log_in(client, **body):
    return client.post(TOKEN, body)


def test_it_gives_a_token_that_authenticates_the_operator(anonymous, agent):
    response = log_in(anonymous, email=agent.email, password=PASSWORD)
    assert response.status_code == 200
    assert set(response.json()) == {"token"}
    me = JsonClient(HTTP_AUTHORIZATION=f"Token {response.json()['token']}").get(ME)
    assert me.status_code == 200
    assert me.json()["id"] == agent.id


def test_the_email_is_matched_whatever_its_case(anonymous, agent):
    response = log_in(anonymous, email=f"  {agent.email.upper()}", password=PASSWORD)
    assert response.status_code == 200


def test_each_login_is_a_new_token_for_its_own_device(anonymous, agent):
    phone = log_in(anonymous, email=agent.email, password=PASSWORD, device="Pixel", mobile=True).json()["token"]
    laptop = log_in(anonymous, email=agent.email, password=PASSWORD, device="Laptop").json()["token"]
    assert phone != laptop
    tokens = {token.device: token.is_mobile for token in ApiToken.objects.filter(operator=agent)}
    assert tokens == {"Pixel": True, "Laptop": False}


def test_logging_in_never_switches_the_operator_online(anonymous, agent):
    log_in(anonymous, email=agent.email, password=PASSWORD, mobile=True)
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE
    assert agent.id not in operators_present(account_id=agent.account_id)
    assert not StatusEvent.objects.exists()


def deactivated(operator: Operator) -> Operator:
    Operator.objects.filter(id=operator.id).update(is_active=False)
    return operator


def staff_without_account() -> Operator:
    return Operator.objects.create_user("staff@example.com", PASSWORD, display_name="Staff", is_staff=True)


@pytest.mark.parametrize(
    ("who", "password"),
    [
        ("the agent", "wrong-password"),
        ("nobody", PASSWORD),
        ("a deactivated agent", PASSWORD),
        ("staff without an account", PASSWORD),
    ],
)
def test_bad_credentials_get_one_answer_that_reveals_nothing(anonymous, agent, who, password):
    email = {
        "the agent": lambda: agent.email,
        "nobody": lambda: "nobody@example.com",
        "a deactivated agent": lambda: deactivated(agent).email,
        "staff without an account": lambda: staff_without_account().email,
    }[who]()
    response = log_in(anonymous, email=email, password=password)
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with the e-mail and password given."]}
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "email"),
        ({"email": "x@example.com"}, "password"),
        ({"email": "not an e-mail", "password": PASSWORD}, "email"),
        ({"email": None, "password": PASSWORD}, "email"),
        ({"email": "x@example.com", "password": PASSWORD, "device": "d" * 81}, "device"),
        ({"email": "x@example.com", "password": PASSWORD, "mobile": "perhaps"}, "mobile"),
        ({"email": "x@example.com", "password": PASSWORD, "mobile": 1}, "mobile"),
        ({"email": "x@example.com", "password": 12345678}, "password"),
        ({"email": "x@example.com", "password": ["a", "list"]}, "password"),
    ],
)
def test_bad_input_is_named_by_field(anonymous, db, body, field):
    response = anonymous.post(TOKEN, body)
    assert response.status_code == 400
    assert field in response.json()


def test_a_stale_token_header_does_not_stop_a_login(agent):
    client = JsonClient(HTTP_AUTHORIZATION="Token no-such-token")
    assert log_in(client, email=agent.email, password=PASSWORD).status_code == 200


def test_logins_are_limited_to_ten_a_minute_per_address(anonymous, agent):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        codes = [log_in(anonymous, email=agent.email, password="wrong-password").status_code for _ in range(10)]
        assert codes == [400] * 10
        blocked = log_in(anonymous, email=agent.email, password=PASSWORD)
        assert blocked.status_code == 429
        assert "Retry-After" in blocked.headers
        elsewhere = JsonClient(REMOTE_ADDR="10.0.0.9")
        assert log_in(elsewhere, email=agent.email, password=PASSWORD).status_code == 200
        spoofed = JsonClient(HTTP_X_FORWARDED_FOR="10.9.9.9")
        assert log_in(spoofed, email=agent.email, password=PASSWORD).status_code == 429
        traveller.shift(dt.timedelta(seconds=61))
        assert log_in(anonymous, email=agent.email, password=PASSWORD).status_code == 200


# --- logout -------------------------------------------------------------------------------------


def test_logout_revokes_only_the_token_it_was_sent_with(agent):
    phone, laptop = token_client(agent, device="phone"), token_client(agent, device="laptop")
    assert phone.post(LOGOUT).status_code == 204
    assert phone.get(ME).status_code == 401
    assert laptop.get(ME).status_code == 200
    assert list(ApiToken.objects.filter(operator=agent).values_list("device", flat=True)) == ["laptop"]


def test_logout_of_the_last_device_marks_the_operator_offline_at_once(agent):
    phone = token_client(agent, is_mobile=True)
    assert phone.put("/api/v1/me/status", {"status": "online"}).status_code == 200
    assert phone.post(LOGOUT).status_code == 204
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE
    event = StatusEvent.objects.get(new=Status.OFFLINE)
    assert event.source == Source.LOGOUT
    assert agent.id not in operators_present(account_id=agent.account_id)


def test_logout_leaves_the_operator_online_while_another_device_is_live(agent):
    phone = token_client(agent, is_mobile=True)
    phone.put("/api/v1/me/status", {"status": "online"})
    presence_heartbeat(operator=agent, conn_id="dashboard-socket", device="s:dashboard")
    assert phone.post(LOGOUT).status_code == 204
    agent.refresh_from_db()
    assert agent.status == Status.ONLINE


def test_logout_ends_exactly_the_device_of_its_token(agent):
    phone = token_client(agent)
    token = ApiToken.objects.get(operator=agent)
    phone.post("/api/v1/me/heartbeat", {})
    presence_heartbeat(operator=agent, conn_id="other", device="t:other")
    assert token_device_tag(token) in devices_of(agent)
    phone.post(LOGOUT)
    assert devices_of(agent) == {"t:other"}


def test_session_logout_ends_the_session_and_its_device(agent):
    client = session_client(agent)
    session_key = client.session.session_key
    client.put("/api/v1/me/status", {"status": "online"})
    assert client.post(LOGOUT).status_code == 204
    assert client.get(ME).status_code == 401
    agent.refresh_from_db()
    assert agent.status == Status.OFFLINE
    assert StatusEvent.objects.filter(source=Source.LOGOUT).exists()
    assert session_device_tag(session_key) not in devices_of(agent)


def test_logout_needs_credentials(anonymous, db):
    response = anonymous.post(LOGOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"


def test_a_second_operator_logging_out_does_not_touch_the_first(account, agent):
    colleague = make_operator(account=account)
    mine = token_client(agent)
    mine.put("/api/v1/me/status", {"status": "online"})
    token_client(colleague).post(LOGOUT)
    agent.refresh_from_db()
    assert agent.status == Status.ONLINE
