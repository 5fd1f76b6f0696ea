"""/api/v1/operators: the admins' management of an account's operators."""

import pytest

from accounts.models import Operator, Status
from presence.models import Source, StatusEvent
from tests.api.conftest import token_client
from tests.factories import PASSWORD, make_operator

OPERATORS = "/api/v1/operators"


def test_admins_list_the_operators_of_their_account_only(as_admin, owner, admin, agent, stranger):
    body = as_admin.get(OPERATORS).json()
    assert {op["id"] for op in body} == {owner.id, admin.id, agent.id}


def test_an_admin_adds_an_offline_agent_who_can_log_in(as_admin, account, anonymous):
    response = as_admin.post(
        OPERATORS, {"email": "New.Person@Example.com", "display_name": "New Person", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "agent"
    assert body["status"] == "offline"
    assert "password" not in body
    created = Operator.objects.get(id=body["id"])
    assert created.account_id == account.id
    login = anonymous.post("/api/v1/auth/token", {"email": "new.person@example.com", "password": PASSWORD})
    assert login.status_code == 200


def test_an_operator_added_without_a_password_cannot_log_in_yet(as_owner, anonymous):
    body = as_owner.post(OPERATORS, {"email": "later@example.com", "display_name": "Later", "role": "admin"}).json()
    assert body["role"] == "admin"
    assert not Operator.objects.get(id=body["id"]).has_usable_password()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": "X"}, "email"),
        ({"email": "x@example.com"}, "display_name"),
        ({"email": "x@example.com", "display_name": "X", "role": "owner"}, "role"),
        ({"email": "x@example.com", "display_name": "X", "role": "boss"}, "role"),
        ({"email": "x@example.com", "display_name": "X", "password": "short"}, "password"),
        ({"email": "x@example.com", "display_name": "X", "password": "password"}, "password"),
        ({"email": "x@example.com", "display_name": "X" * 81}, "display_name"),
        ({"email": "x" * 300 + "@example.com", "display_name": "X"}, "email"),
        ({"email": "x@example.com", "display_name": None}, "display_name"),
        ({"email": "x@example.com", "display_name": 12}, "display_name"),
    ],
)
def test_a_bad_new_operator_is_named_by_field(as_admin, body, field):
    response = as_admin.post(OPERATORS, body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Operator.objects.filter(email="x@example.com").exists()


def test_an_email_already_taken_is_named_even_in_another_account(as_admin, stranger):
    response = as_admin.post(OPERATORS, {"email": stranger.email.upper(), "display_name": "Copy"})
    assert response.status_code == 400
    assert "email" in response.json()


def test_an_admin_reads_one_operator(as_admin, agent):
    body = as_admin.get(f"{OPERATORS}/{agent.id}").json()
    assert body["id"] == agent.id
    assert body["display_name"] == "Alan Agent"


def test_an_admin_changes_an_operator(as_admin, agent):
    response = as_admin.patch(
        f"{OPERATORS}/{agent.id}", {"display_name": "Alan B.", "role": "admin", "language": "cs", "ignored": 1}
    )
    assert response.status_code == 200
    agent.refresh_from_db()
    assert (agent.display_name, agent.role, agent.language) == ("Alan B.", "admin", "cs")


def test_a_deactivated_operator_can_no_longer_use_their_token(as_admin, agent):
    agents_client = token_client(agent)
    assert as_admin.patch(f"{OPERATORS}/{agent.id}", {"is_active": False}).status_code == 200
    assert agents_client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    ("actor", "target", "change", "field"),
    [
        ("admin", "owner", {"role": "admin"}, "role"),
        ("owner", "owner", {"role": "agent"}, "role"),
        ("admin", "agent", {"role": "owner"}, "role"),
        ("admin", "owner", {"is_active": False}, "is_active"),
        ("admin", "admin", {"is_active": False}, "is_active"),
        ("admin", "owner", {"email": "mine@example.com"}, "email"),
        ("admin", "agent", {"email": "not-an-email"}, "email"),
        ("admin", "agent", {"language": "de"}, "language"),
        ("admin", "agent", {"display_name": ""}, "display_name"),
    ],
)
def test_forbidden_or_bad_changes_are_named(owner, admin, agent, actor, target, change, field):
    people = {"owner": owner, "admin": admin, "agent": agent}
    response = token_client(people[actor]).patch(f"{OPERATORS}/{people[target].id}", change)
    assert response.status_code == 400
    assert field in response.json()
    before = people[target]
    after = Operator.objects.get(id=before.id)
    assert (after.role, after.is_active, after.email) == (before.role, before.is_active, before.email)


def test_the_owner_changes_their_own_email(as_owner, owner):
    assert as_owner.patch(f"{OPERATORS}/{owner.id}", {"email": "boss@example.com"}).status_code == 200
    owner.refresh_from_db()
    assert owner.email == "boss@example.com"


def test_an_admin_may_demote_another_admin(as_owner, admin):
    assert as_owner.patch(f"{OPERATORS}/{admin.id}", {"role": "agent"}).json()["role"] == "agent"


def test_an_admin_removes_an_agent(as_admin, agent):
    assert as_admin.delete(f"{OPERATORS}/{agent.id}").status_code == 204
    assert not Operator.objects.filter(id=agent.id).exists()


@pytest.mark.parametrize(("actor", "target"), [("admin", "owner"), ("owner", "owner"), ("admin", "admin")])
def test_nobody_removes_the_owner_or_themselves(owner, admin, actor, target):
    people = {"owner": owner, "admin": admin}
    response = token_client(people[actor]).delete(f"{OPERATORS}/{people[target].id}")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert Operator.objects.filter(id=people[target].id).exists()


def test_an_admin_forces_a_status_recorded_as_admin(as_admin, agent):
    response = as_admin.put(f"{OPERATORS}/{agent.id}/status", {"status": "online"})
    assert response.status_code == 200
    assert response.json()["status"] == "online"
    event = StatusEvent.objects.get()
    assert (event.operator_id, event.new, event.source) == (agent.id, Status.ONLINE, Source.ADMIN)


def test_a_forced_status_is_validated(as_admin, agent):
    response = as_admin.put(f"{OPERATORS}/{agent.id}/status", {"status": "busy"})
    assert response.status_code == 400
    assert "status" in response.json()


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_accounts_operator_is_not_found(as_admin, stranger, method):
    response = getattr(as_admin, method)(f"{OPERATORS}/{stranger.id}", {"display_name": "Hacked"})
    assert response.status_code == 404
    stranger.refresh_from_db()
    assert stranger.display_name != "Hacked"


def test_another_accounts_operator_status_cannot_be_forced(as_admin, stranger):
    assert as_admin.put(f"{OPERATORS}/{stranger.id}/status", {"status": "online"}).status_code == 404
    stranger.refresh_from_db()
    assert stranger.status == Status.OFFLINE


@pytest.mark.parametrize("operator_id", ["0", "-1", "abc", "1.5", "99999999999999999999999", "9223372036854775807"])
def test_ids_that_cannot_exist_are_not_found(as_admin, operator_id):
    assert as_admin.get(f"{OPERATORS}/{operator_id}").status_code == 404


def test_a_colleague_id_one_past_the_last_is_not_found(as_admin, account):
    last = make_operator(account=account)
    assert as_admin.get(f"{OPERATORS}/{last.id + 1000}").status_code == 404
