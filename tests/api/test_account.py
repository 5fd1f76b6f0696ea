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
        "busy_after_seconds": 45,
        "busy_message": "",
        "offline_message": "",
        "bot_mode": "when_unavailable",
    }


def test_admins_change_their_account(as_admin, account):
    change = {
        "name": "Shop",
        "timezone": "Europe/Prague",
        "stale_after_seconds": 300,
        "allowed_origins": ["https://shop.example.com"],
        "language": "cs",
        "busy_after_seconds": 90,
        "busy_message": "Chvilku strpení, hned jsme u vás.",
        "offline_message": "Teď tu nikdo není.",
        "bot_mode": "first",
    }
    response = as_admin.patch("/api/v1/account", change)
    assert response.status_code == 200
    assert response.json() == {"id": account.id, "widget_key": account.widget_key, **change}
    account.refresh_from_db()
    assert (account.name, account.timezone, account.stale_after_seconds) == ("Shop", "Europe/Prague", 300)
    assert (account.busy_after_seconds, account.busy_message) == (90, "Chvilku strpení, hned jsme u vás.")
    assert account.bot_mode == "first"


@pytest.mark.parametrize("seconds", [15, 600])
def test_the_busy_delay_takes_both_ends_of_its_range(as_admin, account, seconds):
    response = as_admin.patch("/api/v1/account", {"busy_after_seconds": seconds})
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.busy_after_seconds == seconds


def test_blank_automatic_messages_go_back_to_the_built_in_text(as_admin, account):
    Account.objects.filter(id=account.id).update(busy_message="Busy!", offline_message="Away!")
    response = as_admin.patch("/api/v1/account", {"busy_message": "", "offline_message": ""})
    assert response.status_code == 200
    account.refresh_from_db()
    assert (account.busy_message, account.offline_message) == ("", "")
    # A message of the longest length allowed is taken whole.
    longest = "x" * 1000
    assert as_admin.patch("/api/v1/account", {"offline_message": longest}).json()["offline_message"] == longest


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
        ({"busy_after_seconds": 14}, "busy_after_seconds"),
        ({"busy_after_seconds": 601}, "busy_after_seconds"),
        ({"busy_after_seconds": "60"}, "busy_after_seconds"),
        ({"busy_after_seconds": None}, "busy_after_seconds"),
        ({"busy_after_seconds": 60.5}, "busy_after_seconds"),
        ({"busy_message": "x" * 1001}, "busy_message"),
        ({"busy_message": None}, "busy_message"),
        ({"busy_message": ["Busy"]}, "busy_message"),
        ({"busy_message": "a\x00b"}, "busy_message"),
        ({"offline_message": "x" * 1001}, "offline_message"),
        ({"offline_message": 5}, "offline_message"),
    ],
)
def test_bad_account_settings_are_named(as_admin, account, change, field):
    response = as_admin.patch("/api/v1/account", change)
    assert response.status_code == 400
    assert field in response.json()
    stored = Account.objects.get(id=account.id)
    assert (stored.name, stored.timezone, stored.stale_after_seconds) == (account.name, "UTC", 120)
    assert (stored.busy_after_seconds, stored.busy_message, stored.offline_message) == (45, "", "")


def test_agents_may_not_change_the_automatic_messages(as_agent, account):
    response = as_agent.patch("/api/v1/account", {"busy_after_seconds": 15, "busy_message": "Mine"})
    assert response.status_code == 403
    account.refresh_from_db()
    assert (account.busy_after_seconds, account.busy_message) == (45, "")


def test_the_account_of_a_stranger_is_their_own(as_stranger, other_account):
    assert as_stranger.get("/api/v1/account").json()["id"] == other_account.id
