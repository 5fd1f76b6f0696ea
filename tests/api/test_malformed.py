"""Forged and malformed input to the REST API: a 4xx that names the mistake,
never a server error, and nothing changed.

Beside the schema-driven run (``test_schemathesis.py``), which cannot forge a
cursor's contents or a lone surrogate, these generate what an attacker would.
"""

import base64
import datetime as dt
import json
from urllib.parse import urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from accounts.models import Operator
from presence.models import StatusEvent
from tests.api.conftest import token_client
from tests.fuzzing import FUZZ, encoded, nesting, values


def cursor(position: str) -> str:
    """A cursor as DRF writes one (``p`` is the position), with any position."""
    return base64.b64encode(urlencode({"p": position}).encode()).decode()


# --- the audit trail's cursor and filters ---------------------------------------------------------


@pytest.mark.parametrize(
    "position",
    [
        "9999-12-31T23:00:00-14:00",  # past year 9999 in UTC
        "9999-12-31T23:59:59.999999-23:59",
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    ],
)
def test_a_cursor_at_a_moment_no_database_takes_is_an_invalid_cursor(as_owner, position):
    response = as_owner.get("/api/v1/status-events", {"cursor": cursor(position)})

    # It should be refused like any other forged cursor, not end in the database.
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize(
    "position",
    [
        "2025-12-31T23:30:00-10:00",
        "2025-12-31T09:31:00-23:59",  # offsets PostgreSQL refuses (beyond ±15:59)
        "2026-01-02T01:30:00+16:00",
    ],
)
def test_a_cursor_in_any_offset_pages_from_the_moment_it_names(as_owner, agent, position):
    for hour in (8, 9, 10):
        at = dt.datetime(2026, 1, 1, hour, tzinfo=dt.UTC)
        StatusEvent.objects.create(
            account_id=agent.account_id,
            operator=agent,
            old="offline",
            new="online",
            source="api",
            at=at,
            device=str(hour),
        )

    # Each position is 09:30 UTC: only the 09:00 and 08:00 events are older.
    response = as_owner.get("/api/v1/status-events", {"cursor": cursor(position)})

    # It should compare moments, whatever the offset they are written in.
    assert response.status_code == 200
    assert [event["device"] for event in response.json()["results"]] == ["9", "8"]


offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
# The whole range Python can hold (hypothesis's default bounds), in any offset,
# and its two ends more often, where an offset pushes a moment out of it.
# (Hypothesis takes naive bounds.)
FIRST_DAYS, LAST_DAYS = dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)  # noqa: DTZ001
ends = st.datetimes(max_value=FIRST_DAYS, timezones=offsets) | st.datetimes(min_value=LAST_DAYS, timezones=offsets)
moments = st.datetimes(timezones=offsets) | ends
positions = moments.map(lambda moment: moment.isoformat()) | st.text(max_size=40)


@FUZZ
@given(position=positions, since=st.none() | positions, operator=st.none() | st.text(max_size=25))
def test_any_cursor_and_filter_is_answered_without_a_server_error(as_owner, position, since, operator):
    query = {"cursor": cursor(position)}
    query |= {"since": since} if since is not None else {}
    query |= {"operator": operator} if operator is not None else {}

    response = as_owner.get("/api/v1/status-events", query)

    # It should be a page, a field error or an invalid cursor.
    assert response.status_code in (200, 400, 404), (query, response.content[:300])
    assert response["Content-Type"] == "application/json"


# --- bodies -------------------------------------------------------------------------------------------

status_bodies = (
    st.fixed_dictionaries({"status": st.sampled_from(["online", "offline"]) | values}, optional={"device": values})
    | values
)

bodies = st.builds(encoded, status_bodies, st.booleans()) | st.binary(max_size=40) | nesting(max_depth=200_000)


@FUZZ
@given(body=bodies)
def test_any_body_for_my_status_is_answered_and_a_refused_one_changes_nothing(agent, body):
    client = token_client(agent)
    before = Operator.objects.values_list("status", flat=True).get(id=agent.id)
    events = StatusEvent.objects.count()

    response = client.put("/api/v1/me/status", body, content_type="application/json")
    event(f"answered {response.status_code}")

    # It should switch for a valid body, refuse anything else with a 4xx, and never fail.
    assert response.status_code in (200, 400, 413, 429), response.content[:300]
    assert response["Content-Type"] == "application/json"
    after = Operator.objects.values_list("status", flat=True).get(id=agent.id)
    if response.status_code == 200:
        assert after == json.loads(body)["status"]
    else:
        assert (after, StatusEvent.objects.count()) == (before, events)
