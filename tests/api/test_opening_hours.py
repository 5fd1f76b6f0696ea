"""/api/v1/opening-hours and /api/v1/groups/{key}/opening-hours."""

import datetime as dt

import pytest
import time_machine

from hours.models import OpeningHours
from hours.schedule import WEEKDAYS
from tests.factories import make_group

NINE_TO_FIVE = {"monday": [{"from": "09:00", "to": "17:00"}]}
CLOSED_WEEK = {day: [] for day in WEEKDAYS}


def test_hours_never_set_are_off_in_the_accounts_time_zone(as_admin, account):
    account.timezone = "Europe/Prague"
    account.save()
    body = as_admin.get("/api/v1/opening-hours").json()
    assert body == {"enabled": False, "timezone": "Europe/Prague", "weekly": CLOSED_WEEK, "exceptions": []}


def test_an_admin_replaces_the_accounts_hours(as_admin, account):
    response = as_admin.put(
        "/api/v1/opening-hours",
        {
            "enabled": True,
            "timezone": "Europe/Prague",
            "weekly": {"friday": [{"from": "22:00", "to": "06:00"}], **NINE_TO_FIVE},
            "exceptions": [{"date": "2026-12-24", "intervals": []}],
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "enabled": True,
        "timezone": "Europe/Prague",
        "weekly": {**CLOSED_WEEK, **NINE_TO_FIVE, "friday": [{"from": "22:00", "to": "06:00"}]},
        "exceptions": [{"date": "2026-12-24", "intervals": []}],
    }
    assert as_admin.get("/api/v1/opening-hours").json() == response.json()
    assert OpeningHours.objects.get(account=account, group=None).enabled


def test_a_put_replaces_everything_left_out(as_admin):
    as_admin.put("/api/v1/opening-hours", {"enabled": True, "timezone": "UTC", "weekly": NINE_TO_FIVE})
    body = as_admin.put("/api/v1/opening-hours", {"enabled": False}).json()
    assert body == {"enabled": False, "timezone": "UTC", "weekly": CLOSED_WEEK, "exceptions": []}


def test_the_hours_close_the_chat_box_outside_them(as_admin, admin, django_capture_on_commit_callbacks):
    monday_night = dt.datetime(2026, 3, 2, 20, 0, tzinfo=dt.UTC)
    with time_machine.travel(monday_night, tick=False), django_capture_on_commit_callbacks(execute=True):
        as_admin.put("/api/v1/me/status", {"status": "online"})
        as_admin.put("/api/v1/opening-hours", {"enabled": True, "timezone": "UTC", "weekly": NINE_TO_FIVE})
    with time_machine.travel(monday_night, tick=False):
        box = as_admin.get("/api/v1/chat-box").json()
    assert (box["status"], box["reason"]) == ("offline", "closed")
    assert box["next_change_at"] == "2026-03-09T09:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "enabled"),
        ({"enabled": "sometimes"}, "enabled"),
        ({"enabled": "true"}, "enabled"),
        ({"enabled": 1}, "enabled"),
        ({"enabled": True, "timezone": "Mars/Olympus"}, "timezone"),
        ({"enabled": True, "timezone": "x" * 65}, "timezone"),
        ({"enabled": True, "weekly": {"funday": []}}, "weekly"),
        ({"enabled": True, "weekly": {"monday": [{"from": "9", "to": "17:00"}]}}, "weekly"),
        ({"enabled": True, "weekly": {"monday": [{"from": "09:00", "to": "25:00"}]}}, "weekly"),
        (
            {"enabled": True, "weekly": {"monday": [*NINE_TO_FIVE["monday"], {"from": "11:00", "to": "13:00"}]}},
            "weekly",
        ),  # noqa: E501
        ({"enabled": True, "weekly": ["monday"]}, "weekly"),
        ({"enabled": True, "weekly": None}, "weekly"),
        ({"enabled": True, "exceptions": [{"date": "2026-02-30", "intervals": []}]}, "exceptions"),
        ({"enabled": True, "exceptions": [{"date": "2026-12-24"}]}, "exceptions"),
        ({"enabled": True, "exceptions": {"2026-12-24": []}}, "exceptions"),
    ],
)
def test_bad_hours_are_named_by_field(as_admin, account, body, field):
    response = as_admin.put("/api/v1/opening-hours", body)
    assert response.status_code == 400
    assert field in response.json()
    assert not OpeningHours.objects.filter(account=account).exists()


def test_a_group_has_its_own_hours(as_admin, account):
    make_group(account=account, key="sales")
    response = as_admin.put(
        "/api/v1/groups/sales/opening-hours", {"enabled": True, "timezone": "UTC", "weekly": NINE_TO_FIVE}
    )
    assert response.status_code == 200
    assert as_admin.get("/api/v1/groups/sales/opening-hours").json()["weekly"]["monday"] == NINE_TO_FIVE["monday"]
    assert as_admin.get("/api/v1/opening-hours").json()["enabled"] is False


def test_a_group_without_its_own_hours_reads_as_off(as_admin, account):
    make_group(account=account, key="sales")
    assert as_admin.get("/api/v1/groups/sales/opening-hours").json()["enabled"] is False


@pytest.mark.parametrize("method", ["get", "put"])
def test_another_accounts_group_hours_are_not_found(as_admin, other_account, method):
    make_group(account=other_account, key="theirs")
    body = {"enabled": True, "timezone": "UTC", "weekly": NINE_TO_FIVE}
    assert getattr(as_admin, method)("/api/v1/groups/theirs/opening-hours", body).status_code == 404
    assert not OpeningHours.objects.exists()
