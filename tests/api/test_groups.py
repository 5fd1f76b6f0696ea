"""/api/v1/groups: departments and their members, named by key."""

import pytest

from groups.models import Group
from tests.factories import make_group


def test_admins_list_their_groups_with_members(as_admin, account, agent, other_account):
    make_group(account=account, key="sales", members=[agent])
    make_group(account=other_account, key="theirs")
    assert as_admin.get("/api/v1/groups").json() == [{"key": "sales", "name": "Sales", "members": [agent.id]}]


def test_an_admin_adds_a_group(as_admin, account, admin, agent):
    response = as_admin.post("/api/v1/groups", {"key": "support", "name": "Support", "members": [agent.id, admin.id]})
    assert response.status_code == 201
    assert response.json() == {"key": "support", "name": "Support", "members": sorted([agent.id, admin.id])}
    assert Group.objects.get(account=account, key="support").members.count() == 2


def test_the_same_key_may_be_used_by_another_account(as_admin, other_account):
    make_group(account=other_account, key="sales")
    assert as_admin.post("/api/v1/groups", {"key": "sales", "name": "Sales"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No key"}, "key"),
        ({"key": "sales"}, "name"),
        ({"key": "Sales Team", "name": "Sales"}, "key"),
        ({"key": "k" * 51, "name": "Sales"}, "key"),
        ({"key": "sales", "name": "Sales", "members": [0]}, "members"),
        ({"key": "sales", "name": "Sales", "members": ["1"]}, "members"),
        ({"key": 7, "name": "Sales"}, "key"),
        ({"key": "sales", "name": "Sales", "members": "1,2"}, "members"),
        ({"key": "sales", "name": "Sales", "members": [10**30]}, "members"),
        ({"key": "sales", "name": "Sales", "members": list(range(1, 1100))}, "members"),
    ],
)
def test_a_bad_group_is_named_by_field(as_admin, body, field):
    response = as_admin.post("/api/v1/groups", body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Group.objects.exists()


def test_a_taken_key_is_refused(as_admin, account):
    make_group(account=account, key="sales")
    response = as_admin.post("/api/v1/groups", {"key": "sales", "name": "Again"})
    assert response.status_code == 400
    assert "key" in response.json()
    assert Group.objects.filter(account=account).count() == 1


def test_another_accounts_operator_cannot_be_made_a_member(as_admin, stranger):
    response = as_admin.post("/api/v1/groups", {"key": "sales", "name": "Sales", "members": [stranger.id]})
    assert response.status_code == 400
    assert "members" in response.json()


def test_an_admin_renames_a_group_and_replaces_its_members(as_admin, account, admin, agent):
    make_group(account=account, key="sales", members=[agent])
    response = as_admin.patch("/api/v1/groups/sales", {"key": "sales-eu", "name": "Sales EU", "members": [admin.id]})
    assert response.status_code == 200
    assert response.json() == {"key": "sales-eu", "name": "Sales EU", "members": [admin.id]}
    assert as_admin.get("/api/v1/groups/sales").status_code == 404


def test_patching_without_members_keeps_them(as_admin, account, agent):
    make_group(account=account, key="sales", members=[agent])
    assert as_admin.patch("/api/v1/groups/sales", {"name": "Sales!"}).json()["members"] == [agent.id]


def test_renaming_to_a_taken_key_is_refused(as_admin, account):
    make_group(account=account, key="sales")
    make_group(account=account, key="support")
    response = as_admin.patch("/api/v1/groups/sales", {"key": "support"})
    assert response.status_code == 400
    assert "key" in response.json()


def test_an_admin_removes_a_group(as_admin, account):
    make_group(account=account, key="sales")
    assert as_admin.delete("/api/v1/groups/sales").status_code == 204
    assert not Group.objects.exists()


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_accounts_group_is_not_found(as_admin, other_account, method):
    make_group(account=other_account, key="theirs")
    response = getattr(as_admin, method)("/api/v1/groups/theirs", {"name": "Mine now"})
    assert response.status_code == 404
    assert Group.objects.get(key="theirs").name == "Theirs"


@pytest.mark.parametrize("key", ["nope", "x" * 300, "%20", "ünï"])
def test_an_unknown_key_is_not_found(as_admin, key):
    assert as_admin.get(f"/api/v1/groups/{key}").status_code == 404
