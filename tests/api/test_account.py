"""/api/v1/account: the admins' settings of their account."""

import pytest

from accounts.models import Account


def test_admins_read_their_account(as_admin, account):
    body = as_admin.get("/api/v1/account").json()
    assert body == {
        "id": account.id,
        "widget_key": account.widget_key,
        "name": account.name,
        "timezone": "UTC",
        "stale_after_seconds": 120,
        "allowed_origins": [],
        "language": "en",
    }


def test_admins_change_their_account(as_admin, account):
    change = {
        "name": "Shop",
        "timezone": "Europe/Prague",
        "stale_after_seconds": 300,
        "allowed_origins": ["https://shop.example.com"],
        "language": "cs",
    }
    response = as_admin.patch("/api/v1/account", change)
    assert response.status_code == 200
    assert response.json() == {"id": account.id, "widget_key": account.widget_key, **change}
    account.refresh_from_db()
    assert (account.name, account.timezone, account.stale_after_seconds) == ("Shop", "Europe/Prague", 300)


def test_read_only_fields_stay_as_they_are(as_admin, account):
    response = as_admin.patch("/api/v1/account", {"id": 999, "widget_key": "mine"})
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.widget_key != "mine"
    assert response.json()["id"] == account.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "n" * 121}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"stale_after_seconds": 29}, "stale_after_seconds"),
        ({"stale_after_seconds": 3601}, "stale_after_seconds"),
        ({"stale_after_seconds": "soon"}, "stale_after_seconds"),
        ({"stale_after_seconds": "300"}, "stale_after_seconds"),
        ({"stale_after_seconds": 300.5}, "stale_after_seconds"),
        ({"name": 42}, "name"),
        ({"stale_after_seconds": 10**40}, "stale_after_seconds"),
        ({"allowed_origins": "https://a.example.com"}, "allowed_origins"),
        ({"allowed_origins": ["ftp://a.example.com"]}, "allowed_origins"),
        ({"allowed_origins": ["https://a.example.com/path"]}, "allowed_origins"),
        ({"allowed_origins": [None]}, "allowed_origins"),
        ({"language": "de"}, "language"),
    ],
)
def test_bad_account_settings_are_named(as_admin, account, change, field):
    response = as_admin.patch("/api/v1/account", change)
    assert response.status_code == 400
    assert field in response.json()
    stored = Account.objects.get(id=account.id)
    assert (stored.name, stored.timezone, stored.stale_after_seconds) == (account.name, "UTC", 120)


def test_the_account_of_a_stranger_is_their_own(as_stranger, other_account):
    assert as_stranger.get("/api/v1/account").json()["id"] == other_account.id
