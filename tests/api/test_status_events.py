"""/api/v1/status-events: the audit trail, newest first, paginated."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Status
from presence.models import Source, StatusEvent
from presence.services import operator_set_status
from tests.api.conftest import token_client


def switch(operator, status, *, at, source=Source.DASHBOARD):
    with time_machine.travel(at, tick=False):
        operator_set_status(operator=operator, status=status, source=source, device="s:abc")


@pytest.fixture
def history(agent, admin):
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    switch(agent, Status.ONLINE, at=start)
    switch(admin, Status.ONLINE, at=start + dt.timedelta(minutes=10))
    switch(agent, Status.OFFLINE, at=start + dt.timedelta(minutes=20), source=Source.LOGOUT)
    return start


def test_admins_read_the_trail_newest_first(as_admin, agent, admin, history):
    body = as_admin.get("/api/v1/status-events").json()
    assert [(e["operator_id"], e["new"], e["source"]) for e in body["results"]] == [
        (agent.id, "offline", "logout"),
        (admin.id, "online", "dashboard"),
        (agent.id, "online", "dashboard"),
    ]
    newest = body["results"][0]
    assert set(newest) == {"id", "operator_id", "old", "new", "source", "device", "at"}
    assert newest["at"] == (history + dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert newest["device"] == "s:abc"


def test_the_trail_filters_by_operator_and_moment(as_admin, agent, history):
    by_agent = as_admin.get("/api/v1/status-events", {"operator": agent.id}).json()["results"]
    assert {e["operator_id"] for e in by_agent} == {agent.id}
    since = (history + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = as_admin.get("/api/v1/status-events", {"since": since}).json()["results"]
    assert len(recent) == 2
    both = as_admin.get("/api/v1/status-events", {"since": since, "operator": agent.id}).json()["results"]
    assert [e["new"] for e in both] == ["offline"]


def test_the_trail_is_paginated(as_admin, agent):
    start = timezone.now() - dt.timedelta(days=1)
    for n in range(7):
        switch(agent, [Status.ONLINE, Status.OFFLINE][n % 2], at=start + dt.timedelta(minutes=n))
    seen, url = [], "/api/v1/status-events?page_size=3"
    while url:
        page = as_admin.get(url).json()
        assert len(page["results"]) <= 3
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert seen == list(StatusEvent.objects.order_by("-at", "-id").values_list("id", flat=True))


def test_another_accounts_trail_is_never_shown(as_admin, stranger, history):
    switch(stranger, Status.ONLINE, at=timezone.now())
    assert as_admin.get("/api/v1/status-events", {"operator": stranger.id}).json()["results"] == []
    theirs = token_client(stranger).get("/api/v1/status-events").json()["results"]
    assert [e["operator_id"] for e in theirs] == [stranger.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"operator": "me"}, "operator"),
        ({"operator": ""}, "operator"),
        ({"since": ""}, "since"),
        ({"operator": "0"}, "operator"),
        ({"operator": str(10**30)}, "operator"),
        ({"operator": "1.0"}, "operator"),
        ({"operator": " 1"}, "operator"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"page_size": ""}, "page_size"),
    ],
)
def test_bad_filters_are_named(as_admin, query, field):
    response = as_admin.get("/api/v1/status-events", query)
    assert response.status_code == 400
    assert field in response.json()


# Cursors decode to a query string; "p" is the position, compared with the event time.
@pytest.mark.parametrize("cursor", ["garbage", "cD1ub3QtYS1kYXRl", "bz0xJnA9MjAyNi05OS0wMQ==", "cD0yMDI2LTAxLTAx"])
def test_a_forged_cursor_is_not_found(as_admin, history, cursor):
    assert as_admin.get("/api/v1/status-events", {"cursor": cursor}).status_code == 404


def test_a_naive_since_is_read_as_utc(as_admin, history):
    since = (history + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    assert len(as_admin.get("/api/v1/status-events", {"since": since}).json()["results"]) == 2
