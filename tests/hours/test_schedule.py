"""Tests for the pure opening-hours evaluator in hours.schedule.

Reference dates: 2026-06-01 is a Monday.  DST days used below (all Sundays):
Europe/Prague 2026-03-29 (02:00 -> 03:00, at 01:00 UTC) and 2026-10-25
(03:00 -> 02:00, at 01:00 UTC); America/New_York 2026-03-08 (02:00 -> 03:00,
at 07:00 UTC) and 2026-11-01 (02:00 -> 01:00, at 06:00 UTC).
"""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from hours.schedule import (
    WEEKDAYS,
    Interval,
    Schedule,
    is_open,
    next_change,
    parse_schedule,
    schedule_to_json,
)

UTC = dt.UTC
EPSILON = dt.timedelta(microseconds=1)
PRAGUE = "Europe/Prague"
NEW_YORK = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone), fold=fold)


def span(start: str, end: str) -> dict[str, str]:
    return {"from": start, "to": end}


def make(
    weekly: dict[str, list[dict[str, str]]] | None = None,
    exceptions: list[dict[str, object]] | None = None,
    timezone: str = PRAGUE,
) -> Schedule:
    return parse_schedule(timezone=timezone, weekly=weekly or {}, exceptions=exceptions or [])


# --------------------------------------------------------------------------
# is_open on ordinary days (Prague in June, UTC+2)
# --------------------------------------------------------------------------

OFFICE = make({"monday": [span("09:00", "17:00")]})


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(PRAGUE, 2026, 6, 1, 8, 59), False),
        (local(PRAGUE, 2026, 6, 1, 9, 0) - EPSILON, False),
        (local(PRAGUE, 2026, 6, 1, 9, 0), True),
        (local(PRAGUE, 2026, 6, 1, 12, 0), True),
        (local(PRAGUE, 2026, 6, 1, 17, 0) - EPSILON, True),
        (local(PRAGUE, 2026, 6, 1, 17, 0), False),
        (local(PRAGUE, 2026, 6, 2, 12, 0), False),  # tuesday has no hours
        (local(PRAGUE, 2026, 6, 8, 12, 0), True),  # next monday
        (utc(2026, 6, 1, 7, 0), True),  # 09:00 CEST given as UTC
        (utc(2026, 6, 1, 6, 59), False),
    ],
)
def test_it_is_open_only_inside_a_plain_daytime_interval(at: dt.datetime, expected: bool) -> None:
    assert is_open(schedule=OFFICE, at=at) is expected


BAR = make({"friday": [span("22:00", "06:00")]})


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(PRAGUE, 2026, 6, 5, 21, 59), False),
        (local(PRAGUE, 2026, 6, 5, 22, 0), True),
        (local(PRAGUE, 2026, 6, 5, 23, 59), True),
        (local(PRAGUE, 2026, 6, 6, 0, 0), True),
        (local(PRAGUE, 2026, 6, 6, 5, 59), True),
        (local(PRAGUE, 2026, 6, 6, 6, 0), False),
        (local(PRAGUE, 2026, 6, 6, 23, 0), False),
        # Friday's tail lives on Saturday morning, not on Friday morning.
        (local(PRAGUE, 2026, 6, 5, 1, 0), False),
    ],
)
def test_it_is_open_inside_an_overnight_interval_before_and_after_midnight(at: dt.datetime, expected: bool) -> None:
    assert is_open(schedule=BAR, at=at) is expected


@pytest.mark.parametrize(
    ("exceptions", "at", "expected"),
    [
        ([{"date": "2026-06-01", "intervals": []}], local(PRAGUE, 2026, 6, 1, 10, 0), False),
        (
            [{"date": "2026-06-01", "intervals": [span("12:00", "14:00")]}],
            local(PRAGUE, 2026, 6, 1, 10, 0),
            False,
        ),
        (
            [{"date": "2026-06-01", "intervals": [span("12:00", "14:00")]}],
            local(PRAGUE, 2026, 6, 1, 13, 0),
            True,
        ),
        (
            [{"date": "2026-06-01", "intervals": [span("12:00", "14:00")]}],
            local(PRAGUE, 2026, 6, 1, 16, 0),
            False,
        ),
        # An exception on a normally closed day opens it.
        (
            [{"date": "2026-06-02", "intervals": [span("10:00", "11:00")]}],
            local(PRAGUE, 2026, 6, 2, 10, 30),
            True,
        ),
        # The exception only touches its own date.
        ([{"date": "2026-06-01", "intervals": []}], local(PRAGUE, 2026, 6, 8, 10, 0), True),
    ],
)
def test_an_exception_replaces_the_weekly_hours_of_its_date(
    exceptions: list[dict[str, object]], at: dt.datetime, expected: bool
) -> None:
    schedule = make({"monday": [span("09:00", "17:00")]}, exceptions)
    assert is_open(schedule=schedule, at=at) is expected


@pytest.mark.parametrize(
    ("closed_date", "at", "expected"),
    [
        # Saturday closed: Friday's 22:00-06:00 still runs into Saturday morning.
        ("2026-06-06", local(PRAGUE, 2026, 6, 6, 5, 0), True),
        ("2026-06-06", local(PRAGUE, 2026, 6, 6, 6, 0), False),
        # Friday closed: the overnight interval belongs to Friday, so it is gone
        # entirely, including its Saturday-morning tail.
        ("2026-06-05", local(PRAGUE, 2026, 6, 5, 23, 0), False),
        ("2026-06-05", local(PRAGUE, 2026, 6, 6, 1, 0), False),
    ],
)
def test_an_exception_does_not_cancel_yesterdays_overnight_tail(
    closed_date: str, at: dt.datetime, expected: bool
) -> None:
    schedule = make({"friday": [span("22:00", "06:00")]}, [{"date": closed_date, "intervals": []}])
    assert is_open(schedule=schedule, at=at) is expected


@pytest.mark.parametrize("midnight", ["24:00", "00:00"])
def test_an_interval_ending_at_24_00_closes_exactly_at_midnight(midnight: str) -> None:
    schedule = make({"monday": [span("20:00", midnight)]})
    assert is_open(schedule=schedule, at=local(PRAGUE, 2026, 6, 2) - EPSILON)
    assert not is_open(schedule=schedule, at=local(PRAGUE, 2026, 6, 2))
    assert next_change(schedule=schedule, after=local(PRAGUE, 2026, 6, 1, 21)) == local(PRAGUE, 2026, 6, 2)


def test_a_whole_day_is_written_00_00_to_24_00() -> None:
    schedule = make({"monday": [span("00:00", "24:00")]})
    assert schedule.weekly[0] == (Interval(start=dt.time(0), end=dt.time(0)),)
    assert is_open(schedule=schedule, at=local(PRAGUE, 2026, 6, 1))
    assert is_open(schedule=schedule, at=local(PRAGUE, 2026, 6, 2) - EPSILON)
    assert not is_open(schedule=schedule, at=local(PRAGUE, 2026, 6, 2))


@pytest.mark.parametrize(
    ("weekly", "exceptions", "after", "expected"),
    [
        (  # 17:00-24:00 then 00:00-06:00 next day: one stretch.
            {"monday": [span("17:00", "24:00")], "tuesday": [span("00:00", "06:00")]},
            [],
            local(PRAGUE, 2026, 6, 1, 18),
            local(PRAGUE, 2026, 6, 2, 6),
        ),
        (  # Same-day adjacency.
            {"monday": [span("09:00", "12:00"), span("12:00", "17:00")]},
            [],
            local(PRAGUE, 2026, 6, 1, 10),
            local(PRAGUE, 2026, 6, 1, 17),
        ),
        (  # An overnight tail handing over to the next day's morning interval.
            {"friday": [span("22:00", "06:00")], "saturday": [span("06:00", "09:00")]},
            [],
            local(PRAGUE, 2026, 6, 5, 23),
            local(PRAGUE, 2026, 6, 6, 9),
        ),
        (  # Same hand-over when the next day is an exception.
            {"friday": [span("22:00", "06:00")]},
            [{"date": "2026-06-06", "intervals": [span("06:00", "08:00")]}],
            local(PRAGUE, 2026, 6, 5, 23),
            local(PRAGUE, 2026, 6, 6, 8),
        ),
        (  # Closed state: the merged stretch opens once.
            {"monday": [span("17:00", "24:00")], "tuesday": [span("00:00", "06:00")]},
            [],
            local(PRAGUE, 2026, 6, 1, 12),
            local(PRAGUE, 2026, 6, 1, 17),
        ),
    ],
)
def test_adjacent_intervals_are_merged_so_the_seam_is_not_a_change(
    weekly: dict[str, list[dict[str, str]]],
    exceptions: list[dict[str, object]],
    after: dt.datetime,
    expected: dt.datetime,
) -> None:
    schedule = make(weekly, exceptions)
    assert next_change(schedule=schedule, after=after) == expected


# --------------------------------------------------------------------------
# DST: real UTC instants
# --------------------------------------------------------------------------

# (zone, interval, date, opens at, closes at)
DST_CASES = [
    # 01:00-05:00 on spring-forward day: 3 real hours.
    pytest.param(
        PRAGUE,
        ("01:00", "05:00"),
        "2026-03-29",
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 3),
        id="prague-spring-01-05",
    ),
    pytest.param(
        NEW_YORK,
        ("01:00", "05:00"),
        "2026-03-08",
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 9),
        id="new-york-spring-01-05",
    ),
    # 01:00-05:00 on fall-back day: 5 real hours.
    pytest.param(
        PRAGUE,
        ("01:00", "05:00"),
        "2026-10-25",
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 4),
        id="prague-fall-01-05",
    ),
    # In New York 01:00 itself is ambiguous: first occurrence is 01:00 EDT.
    pytest.param(
        NEW_YORK,
        ("01:00", "05:00"),
        "2026-11-01",
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 10),
        id="new-york-fall-01-05",
    ),
    # Non-existent start (02:30 in the gap) opens at the moment of the jump.
    pytest.param(
        PRAGUE,
        ("02:30", "04:00"),
        "2026-03-29",
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
        id="prague-gap-start",
    ),
    pytest.param(
        NEW_YORK,
        ("02:30", "04:00"),
        "2026-03-08",
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 8),
        id="new-york-gap-start",
    ),
    # Non-existent end closes at the moment of the jump.
    pytest.param(
        PRAGUE,
        ("00:00", "02:30"),
        "2026-03-29",
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 1),
        id="prague-gap-end",
    ),
    pytest.param(
        NEW_YORK,
        ("00:00", "02:30"),
        "2026-03-08",
        utc(2026, 3, 8, 5),
        utc(2026, 3, 8, 7),
        id="new-york-gap-end",
    ),
    # Ambiguous start: first occurrence (02:30 CEST / 01:30 EDT).
    pytest.param(
        PRAGUE,
        ("02:30", "04:00"),
        "2026-10-25",
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 3),
        id="prague-ambiguous-start",
    ),
    pytest.param(
        NEW_YORK,
        ("01:30", "03:00"),
        "2026-11-01",
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 8),
        id="new-york-ambiguous-start",
    ),
    # Ambiguous end: first occurrence, so the repeated hour is closed.
    pytest.param(
        PRAGUE,
        ("00:00", "02:30"),
        "2026-10-25",
        utc(2026, 10, 24, 22),
        utc(2026, 10, 25, 0, 30),
        id="prague-ambiguous-end",
    ),
    pytest.param(
        NEW_YORK,
        ("00:00", "01:30"),
        "2026-11-01",
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 5, 30),
        id="new-york-ambiguous-end",
    ),
]


def _single_day(zone: str, interval: tuple[str, str], date: str) -> Schedule:
    return make(
        exceptions=[{"date": date, "intervals": [span(*interval)]}],
        timezone=zone,
    )


@pytest.mark.parametrize(("zone", "interval", "date", "opens", "closes"), DST_CASES)
def test_is_open_flips_at_the_real_utc_instants_on_dst_days(
    zone: str, interval: tuple[str, str], date: str, opens: dt.datetime, closes: dt.datetime
) -> None:
    schedule = _single_day(zone, interval, date)
    assert not is_open(schedule=schedule, at=opens - EPSILON)
    assert is_open(schedule=schedule, at=opens)
    assert is_open(schedule=schedule, at=closes - EPSILON)
    assert not is_open(schedule=schedule, at=closes)


@pytest.mark.parametrize(("zone", "interval", "date", "opens", "closes"), DST_CASES)
def test_next_change_lands_exactly_on_the_flip_on_dst_days(
    zone: str, interval: tuple[str, str], date: str, opens: dt.datetime, closes: dt.datetime
) -> None:
    schedule = _single_day(zone, interval, date)
    assert next_change(schedule=schedule, after=opens - dt.timedelta(hours=6)) == opens
    assert next_change(schedule=schedule, after=opens - EPSILON) == opens
    assert next_change(schedule=schedule, after=opens) == closes
    assert next_change(schedule=schedule, after=closes - EPSILON) == closes
    assert next_change(schedule=schedule, after=closes) is None


@pytest.mark.parametrize(
    ("zone", "date", "at"),
    [
        (PRAGUE, "2026-10-25", utc(2026, 10, 25, 1, 30)),  # second 02:30 (CET)
        (NEW_YORK, "2026-11-01", utc(2026, 11, 1, 6, 15)),  # second 01:15 (EST)
    ],
)
def test_the_repeated_hour_after_an_ambiguous_closing_time_is_closed(zone: str, date: str, at: dt.datetime) -> None:
    end = "02:30" if zone == PRAGUE else "01:30"
    schedule = _single_day(zone, ("00:00", end), date)
    assert not is_open(schedule=schedule, at=at)


@pytest.mark.parametrize(
    ("zone", "date", "jump"),
    [
        (PRAGUE, "2026-03-29", utc(2026, 3, 29, 1)),
        (NEW_YORK, "2026-03-08", utc(2026, 3, 8, 7)),
    ],
)
def test_an_interval_entirely_inside_the_spring_forward_gap_never_opens(
    zone: str, date: str, jump: dt.datetime
) -> None:
    schedule = _single_day(zone, ("02:00", "02:30"), date)
    for at in (jump - EPSILON, jump, jump + EPSILON):
        assert not is_open(schedule=schedule, at=at)
    assert next_change(schedule=schedule, after=jump - dt.timedelta(days=1)) is None


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Weekly Sunday 01:00-05:00, seen from the Saturday before each DST day.
        (PRAGUE, utc(2026, 3, 28, 12), utc(2026, 3, 29, 0)),
        (PRAGUE, utc(2026, 3, 29, 0), utc(2026, 3, 29, 3)),
        (PRAGUE, utc(2026, 10, 24, 12), utc(2026, 10, 24, 23)),
        (PRAGUE, utc(2026, 10, 24, 23), utc(2026, 10, 25, 4)),
        (NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 8, 6)),
        (NEW_YORK, utc(2026, 3, 8, 6), utc(2026, 3, 8, 9)),
        (NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 1, 5)),
        (NEW_YORK, utc(2026, 11, 1, 5), utc(2026, 11, 1, 10)),
        # The week after, offsets are settled again: 4 real hours.
        (PRAGUE, utc(2026, 4, 5, 0), utc(2026, 4, 5, 3)),
        (NEW_YORK, utc(2026, 11, 8, 6), utc(2026, 11, 8, 10)),
    ],
)
def test_weekly_hours_follow_the_wall_clock_across_dst(zone: str, after: dt.datetime, expected: dt.datetime) -> None:
    schedule = make({"sunday": [span("01:00", "05:00")]}, timezone=zone)
    assert next_change(schedule=schedule, after=after) == expected


# --------------------------------------------------------------------------
# next_change edge cases
# --------------------------------------------------------------------------

ALWAYS_OPEN = {day: [span("00:00", "24:00")] for day in WEEKDAYS}
ALWAYS_OPEN_IN_HALVES = {day: [span("00:00", "12:00"), span("12:00", "24:00")] for day in WEEKDAYS}


@pytest.mark.parametrize(
    ("weekly", "exceptions"),
    [
        pytest.param({}, [], id="always-closed"),
        pytest.param({"monday": []}, [], id="always-closed-explicit-empty-day"),
        pytest.param(ALWAYS_OPEN, [], id="open-24-7"),
        pytest.param(ALWAYS_OPEN_IN_HALVES, [], id="open-24-7-in-adjacent-halves"),
        pytest.param(
            {day: [span("12:00", "24:00"), span("00:00", "12:00")] for day in WEEKDAYS},
            [],
            id="open-24-7-listed-out-of-order",
        ),
        pytest.param(
            {},
            [{"date": "2027-12-24", "intervals": [span("09:00", "10:00")]}],
            id="closed-with-an-exception-beyond-the-400-day-horizon",
        ),
        pytest.param(
            ALWAYS_OPEN,
            [{"date": "2026-06-01", "intervals": [span("00:00", "24:00")]}],
            id="open-24-7-with-an-exception-that-changes-nothing",
        ),
    ],
)
def test_next_change_is_none_when_the_state_never_changes(
    weekly: dict[str, list[dict[str, str]]], exceptions: list[dict[str, object]]
) -> None:
    schedule = make(weekly, exceptions)
    assert next_change(schedule=schedule, after=utc(2026, 6, 1, 12)) is None


def test_next_change_finds_an_exception_that_closes_an_always_open_schedule() -> None:
    schedule = make(ALWAYS_OPEN, [{"date": "2026-12-24", "intervals": []}])
    after = utc(2026, 6, 1, 12)
    assert is_open(schedule=schedule, at=after)
    assert next_change(schedule=schedule, after=after) == utc(2026, 12, 23, 23)  # 00:00 CET
    assert next_change(schedule=schedule, after=utc(2026, 12, 23, 23)) == utc(2026, 12, 24, 23)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Exactly on a boundary: the change at `after` itself does not count.
        (local(PRAGUE, 2026, 6, 1, 9), local(PRAGUE, 2026, 6, 1, 17)),
        (local(PRAGUE, 2026, 6, 1, 17), local(PRAGUE, 2026, 6, 8, 9)),
        (local(PRAGUE, 2026, 6, 1, 9) - EPSILON, local(PRAGUE, 2026, 6, 1, 9)),
        (local(PRAGUE, 2026, 6, 1, 17) - EPSILON, local(PRAGUE, 2026, 6, 1, 17)),
        # `after` may be given in any zone; it is the instant that matters.
        (local(NEW_YORK, 2026, 6, 1, 3), local(PRAGUE, 2026, 6, 1, 17)),
        (local(NEW_YORK, 2026, 5, 31, 23), local(PRAGUE, 2026, 6, 1, 9)),
    ],
)
def test_next_change_is_strictly_after_after_even_on_a_boundary(after: dt.datetime, expected: dt.datetime) -> None:
    assert next_change(schedule=OFFICE, after=after) == expected


def test_next_change_returns_an_aware_utc_datetime() -> None:
    change = next_change(schedule=OFFICE, after=local(PRAGUE, 2026, 6, 1, 10))
    assert change == utc(2026, 6, 1, 15)
    assert change is not None
    assert change.tzinfo is dt.UTC


@pytest.mark.parametrize("function", ["is_open", "next_change"])
def test_naive_datetimes_are_refused(function: str) -> None:
    naive = dt.datetime(2026, 6, 1, 12)  # noqa: DTZ001 -- the point of the test
    with pytest.raises(ValueError, match="aware"):
        if function == "is_open":
            is_open(schedule=OFFICE, at=naive)
        else:
            next_change(schedule=OFFICE, after=naive)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

VALID = {"timezone": PRAGUE, "weekly": {}, "exceptions": []}
MONDAY_9_TO_5 = [span("09:00", "17:00")]

INVALID_CASES = [
    # (overrides of VALID, key in message_dict, fragments expected in the messages)
    pytest.param({"timezone": "Mars/Olympus"}, "timezone", ["Mars/Olympus"], id="unknown-zone"),
    pytest.param({"timezone": "europe/prague"}, "timezone", ["europe/prague"], id="zone-case"),
    pytest.param({"timezone": ""}, "timezone", [], id="empty-zone"),
    pytest.param({"timezone": "../etc/passwd"}, "timezone", [], id="zone-path"),
    pytest.param({"timezone": "localtime"}, "timezone", [], id="host-localtime"),
    pytest.param({"timezone": 42}, "timezone", ["42"], id="zone-not-a-string"),
    pytest.param({"weekly": [MONDAY_9_TO_5]}, "weekly", [], id="weekly-not-an-object"),
    pytest.param({"weekly": {"funday": MONDAY_9_TO_5}}, "weekly", ["funday"], id="funday"),
    pytest.param({"weekly": {"Monday": MONDAY_9_TO_5}}, "weekly", ["Monday"], id="weekday-case"),
    pytest.param(
        {"weekly": {"monday": [span("09:00", "25:00")]}},
        "weekly",
        ["monday", "25:00"],
        id="25-00",
    ),
    pytest.param(
        {"weekly": {"tuesday": [span("12:60", "13:00")]}},
        "weekly",
        ["tuesday", "12:60"],
        id="12-60",
    ),
    pytest.param({"weekly": {"monday": [span("9am", "17:00")]}}, "weekly", ["9am"], id="9am"),
    pytest.param({"weekly": {"monday": [span("9:00", "17:00")]}}, "weekly", ["9:00"], id="one-digit-hour"),
    pytest.param(
        {"weekly": {"monday": [span("\u0661\u0662:00", "17:00")]}},
        "weekly",
        [],
        id="non-ascii-digits",
    ),
    pytest.param(
        {"weekly": {"monday": [{"from": 900, "to": "17:00"}]}},
        "weekly",
        ["monday", "900"],
        id="time-not-a-string",
    ),
    pytest.param({"weekly": {"monday": [span("24:00", "06:00")]}}, "weekly", ["24:00"], id="24-00-as-from"),
    pytest.param({"weekly": {"monday": [span("20:00", "24:30")]}}, "weekly", ["24:30"], id="24-30"),
    pytest.param(
        {"weekly": {"monday": [span("09:00", "09:00")]}},
        "weekly",
        ["monday", "09:00"],
        id="from-equals-to",
    ),
    pytest.param(
        {"weekly": {"monday": [span("00:00", "00:00")]}},
        "weekly",
        ["00:00"],
        id="from-equals-to-midnight",
    ),
    pytest.param(
        {"weekly": {"monday": [span("09:00", "12:00"), span("11:00", "17:00")]}},
        "weekly",
        ["monday", "overlap"],
        id="overlap-on-one-day",
    ),
    pytest.param(
        {"weekly": {"monday": [span("22:00", "06:00"), span("23:00", "01:00")]}},
        "weekly",
        ["monday", "overlap"],
        id="two-overnight-intervals-overlap",
    ),
    pytest.param(
        {"weekly": {"monday": [span("00:00", "24:00"), span("10:00", "11:00")]}},
        "weekly",
        ["overlap"],
        id="overlap-with-a-whole-day",
    ),
    pytest.param(
        {"weekly": {"friday": [span("22:00", "06:00")], "saturday": [span("05:00", "09:00")]}},
        "weekly",
        ["friday", "saturday", "22:00-06:00", "05:00-09:00"],
        id="overnight-spills-into-next-morning",
    ),
    pytest.param(
        {"weekly": {"sunday": [span("20:00", "02:00")], "monday": [span("01:00", "09:00")]}},
        "weekly",
        ["sunday", "monday"],
        id="sunday-night-spills-into-monday",
    ),
    pytest.param({"weekly": {"monday": "09:00-17:00"}}, "weekly", [], id="day-not-a-list"),
    pytest.param({"weekly": {"monday": [{"from": "09:00"}]}}, "weekly", [], id="missing-to"),
    pytest.param(
        {"weekly": {"monday": [span("09:00", "17:00") | {"note": "x"}]}},
        "weekly",
        [],
        id="unknown-interval-field",
    ),
    pytest.param(
        {"weekly": {"monday": [span(f"{h:02d}:00", f"{h:02d}:30") for h in range(13)]}},
        "weekly",
        ["12"],
        id="thirteen-intervals",
    ),
    pytest.param({"exceptions": {"2026-12-24": []}}, "exceptions", [], id="exceptions-not-a-list"),
    pytest.param(
        {"exceptions": [{"date": "2026-02-30", "intervals": []}]},
        "exceptions",
        ["2026-02-30"],
        id="february-30",
    ),
    pytest.param(
        {"exceptions": [{"date": "20261224", "intervals": []}]},
        "exceptions",
        ["20261224"],
        id="compact-iso-date",
    ),
    pytest.param(
        {"exceptions": [{"date": 20261224, "intervals": []}]},
        "exceptions",
        [],
        id="date-not-a-string",
    ),
    pytest.param(
        {
            "exceptions": [
                {"date": "2026-12-24", "intervals": []},
                {"date": "2026-12-24", "intervals": [span("09:00", "10:00")]},
            ]
        },
        "exceptions",
        ["2026-12-24", "more than once"],
        id="duplicate-date",
    ),
    pytest.param(
        {"exceptions": [{"date": "2026-12-24", "intervals": None}]},
        "exceptions",
        ["2026-12-24"],
        id="intervals-not-a-list",
    ),
    pytest.param({"exceptions": [{"date": "2026-12-24"}]}, "exceptions", [], id="missing-intervals"),
    pytest.param(
        {
            "exceptions": [
                {
                    "date": "2026-12-24",
                    "intervals": [span(f"{h:02d}:00", f"{h:02d}:30") for h in range(13)],
                }
            ]
        },
        "exceptions",
        ["2026-12-24", "12"],
        id="thirteen-exception-intervals",
    ),
    pytest.param(
        {"exceptions": [{"date": "2026-12-31", "intervals": [span("09:00", "25:00")]}]},
        "exceptions",
        ["2026-12-31", "25:00"],
        id="bad-exception-time",
    ),
    pytest.param(
        {"exceptions": [{"date": "2026-12-31", "intervals": [span("09:00", "12:00"), span("10:00", "11:00")]}]},
        "exceptions",
        ["2026-12-31", "overlap"],
        id="overlap-within-an-exception",
    ),
    pytest.param(
        {
            # 2026-12-26 is a Saturday; Friday's tail runs until 06:00.
            "weekly": {"friday": [span("22:00", "06:00")]},
            "exceptions": [{"date": "2026-12-26", "intervals": [span("05:00", "09:00")]}],
        },
        "exceptions",
        ["friday", "2026-12-25", "2026-12-26"],
        id="exception-overlaps-yesterdays-overnight-tail",
    ),
    pytest.param(
        {
            "weekly": {"friday": [span("08:00", "12:00")]},
            "exceptions": [{"date": "2026-12-24", "intervals": [span("22:00", "09:00")]}],
        },
        "exceptions",
        ["2026-12-24", "friday", "2026-12-25"],
        id="exception-overnight-spills-into-next-morning",
    ),
    pytest.param(
        {
            "exceptions": [
                {"date": "2026-12-24", "intervals": [span("22:00", "02:00")]},
                {"date": "2026-12-25", "intervals": [span("01:00", "03:00")]},
            ]
        },
        "exceptions",
        ["2026-12-24", "2026-12-25"],
        id="exception-overnight-spills-into-next-exception",
    ),
]


@pytest.mark.parametrize(("overrides", "key", "fragments"), INVALID_CASES)
def test_invalid_input_raises_validation_error_keyed_by_the_field(
    overrides: dict[str, object], key: str, fragments: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule(**(VALID | overrides))
    assert set(caught.value.message_dict) == {key}
    text = " ".join(caught.value.message_dict[key])
    for fragment in fragments:
        assert fragment in text


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule(
            timezone="Mars/Olympus",
            weekly={"funday": [], "monday": [span("25:00", "12:60")]},
            exceptions=[{"date": "2026-02-30", "intervals": []}],
        )
    messages = caught.value.message_dict
    assert set(messages) == {"timezone", "weekly", "exceptions"}
    assert len(messages["weekly"]) == 3  # funday, "25:00", "12:60"


@pytest.mark.parametrize(
    ("weekly", "exceptions"),
    [
        pytest.param({"monday": [span("00:00", "24:00")]}, [], id="whole-day"),
        pytest.param({"monday": [span("23:00", "00:00")]}, [], id="to-00-00-means-midnight"),
        pytest.param({"monday": [span("23:00", "22:00")]}, [], id="23-hour-overnight"),
        pytest.param(
            {"monday": [span(f"{h:02d}:00", f"{h:02d}:30") for h in range(12)]},
            [],
            id="twelve-intervals",
        ),
        pytest.param(
            {"friday": [span("22:00", "06:00")], "saturday": [span("06:00", "09:00")]},
            [],
            id="overnight-tail-adjacent-to-next-morning",
        ),
        pytest.param(
            {"friday": [span("22:00", "06:00")]},
            [{"date": "2026-12-26", "intervals": [span("06:00", "09:00")]}],
            id="exception-adjacent-to-yesterdays-tail",
        ),
        pytest.param(
            {"monday": [span("09:00", "17:00")]},
            [
                {"date": "2026-12-31", "intervals": [span("09:00", "12:00")]},
                {"date": "2026-12-24", "intervals": []},
            ],
            id="exceptions-in-any-order",
        ),
    ],
)
def test_valid_edge_inputs_are_accepted(
    weekly: dict[str, list[dict[str, str]]], exceptions: list[dict[str, object]]
) -> None:
    schedule = make(weekly, exceptions)
    assert set(schedule.weekly) == set(range(7))


def test_interval_refuses_an_empty_span_when_built_directly() -> None:
    with pytest.raises(ValueError, match="differ"):
        Interval(start=dt.time(9), end=dt.time(9))


# --------------------------------------------------------------------------
# JSON round trip
# --------------------------------------------------------------------------


def test_schedule_to_json_lists_all_days_and_sorts_exceptions() -> None:
    schedule = make(
        {"monday": [span("12:00", "14:00"), span("08:00", "10:00")], "friday": [span("22:00", "00:00")]},
        [
            {"date": "2026-12-31", "intervals": [span("09:00", "12:00")]},
            {"date": "2026-12-24", "intervals": []},
        ],
    )
    assert schedule_to_json(schedule) == {
        "timezone": PRAGUE,
        "weekly": {
            "monday": [span("08:00", "10:00"), span("12:00", "14:00")],
            "tuesday": [],
            "wednesday": [],
            "thursday": [],
            "friday": [span("22:00", "24:00")],
            "saturday": [],
            "sunday": [],
        },
        "exceptions": [
            {"date": "2026-12-24", "intervals": []},
            {"date": "2026-12-31", "intervals": [span("09:00", "12:00")]},
        ],
    }


@pytest.mark.parametrize(
    ("weekly", "exceptions", "timezone"),
    [
        ({}, [], "UTC"),
        ({"monday": MONDAY_9_TO_5, "friday": [span("22:00", "06:00")]}, [], PRAGUE),
        (ALWAYS_OPEN, [{"date": "2026-12-24", "intervals": []}], NEW_YORK),
        (
            {"sunday": [span("00:00", "24:00")]},
            [{"date": "2026-03-08", "intervals": [span("02:30", "24:00"), span("00:00", "01:00")]}],
            NEW_YORK,
        ),
    ],
)
def test_schedule_to_json_round_trips_through_parse_schedule(
    weekly: dict[str, list[dict[str, str]]], exceptions: list[dict[str, object]], timezone: str
) -> None:
    schedule = make(weekly, exceptions, timezone)
    assert parse_schedule(**schedule_to_json(schedule)) == schedule


# --------------------------------------------------------------------------
# Property-based tests
# --------------------------------------------------------------------------

ZONES = [PRAGUE, NEW_YORK, "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
# Local dates around which offsets change in 2026 (Lord Howe shifts by 30 min).
DST_DATES = {
    PRAGUE: [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
    NEW_YORK: [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],
    "Australia/Lord_Howe": [dt.date(2026, 4, 5), dt.date(2026, 10, 4)],
    "Asia/Kolkata": [dt.date(2026, 6, 1)],
    "UTC": [dt.date(2026, 6, 1)],
}
WEEK_MINUTES = 7 * 24 * 60
DAY_MINUTES = 24 * 60
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)

# Boundaries mostly on a 30-minute grid so they coincide with DST transitions
# (02:00, 02:30, 03:00) and with each other; sometimes any minute.
minute_in_week = st.one_of(
    st.integers(0, WEEK_MINUTES // 30 - 1).map(lambda slot: slot * 30),
    st.integers(0, WEEK_MINUTES - 1),
)


def _hhmm(minutes: int, *, is_end: bool) -> str:
    minutes %= DAY_MINUTES
    if is_end and minutes == 0:
        return "24:00"
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _interval_json(start: int, length: int) -> dict[str, str]:
    """``start`` in minutes from the start of its day (< 1440)."""
    return span(_hhmm(start, is_end=False), _hhmm(start + length, is_end=True))


def _clip(start: int, length: int) -> int:
    # A representable interval is at most 24 h, and exactly 24 h only from midnight.
    if length >= DAY_MINUTES:
        return DAY_MINUTES if start % DAY_MINUTES == 0 else DAY_MINUTES - 1
    return length


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[str, list[dict[str, str]]]:
    # Pair up sorted distinct points of the week into disjoint intervals, then
    # rotate the whole week so Sunday-night-into-Monday spills occur too.
    # Repeated points are allowed on purpose: (a, b), (b, c) gives adjacent
    # intervals, whose seam must not count as a change; (a, a) is skipped.
    points = sorted(draw(st.lists(minute_in_week, max_size=16)))
    # Rotating by whole days keeps grid points on midnight, giving whole days.
    rotation = draw(st.integers(0, 6).map(lambda day: day * DAY_MINUTES) | st.integers(0, WEEK_MINUTES - 1))
    weekly: dict[str, list[dict[str, str]]] = {}
    for start, end in zip(points[::2], points[1::2], strict=False):
        if start == end:
            continue
        rotated = (start + rotation) % WEEK_MINUTES
        length = _clip(rotated, end - start)
        day, start_in_day = divmod(rotated, DAY_MINUTES)
        weekly.setdefault(WEEKDAYS[day], []).append(_interval_json(start_in_day, length))
    return weekly


@st.composite
def day_intervals(draw: st.DrawFn) -> list[dict[str, str]]:
    # Points up to 36:00 so an exception may end with an overnight interval.
    points = sorted(
        draw(
            st.lists(
                st.one_of(st.integers(0, 71).map(lambda slot: slot * 30), st.integers(0, 2159)),
                max_size=8,
            )
        )
    )
    intervals = []
    for start, end in zip(points[::2], points[1::2], strict=False):
        if start >= DAY_MINUTES:
            break
        if start == end:
            continue
        intervals.append(_interval_json(start, _clip(start, end - start)))
    return intervals


@st.composite
def instants(draw: st.DrawFn, zone: str) -> dt.datetime:
    kind = draw(st.sampled_from(["anywhere", "wall-clock-grid", "dst-day"]))
    if kind == "anywhere":
        seconds = draw(st.integers(0, 365 * 86400 - 1))
        micros = draw(st.integers(0, 999_999))
        return utc(2026, 1, 1) + dt.timedelta(seconds=seconds, microseconds=micros)
    if kind == "wall-clock-grid":
        date = dt.date(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 364)))
    else:
        date = draw(st.sampled_from(DST_DATES[zone])) + dt.timedelta(days=draw(st.integers(-1, 1)))
    # Wall-clock times on the 30-minute grid hit interval boundaries exactly;
    # the jitter probes either side of them.
    slot = draw(st.integers(0, 47))
    wall = dt.datetime.combine(date, dt.time(slot // 2, 30 * (slot % 2)), tzinfo=zoneinfo.ZoneInfo(zone)).replace(
        fold=draw(st.integers(0, 1))
    )
    jitter = draw(st.sampled_from([dt.timedelta(0), EPSILON, -EPSILON]))
    return wall.astimezone(UTC) + jitter


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Schedule, dt.datetime]:
    zone = draw(st.sampled_from(ZONES))
    at = draw(instants(zone))
    weekly = draw(weekly_hours())
    # Exceptions near `at` so they actually matter.  Add them one at a time and
    # keep only those that validate (an exception may overlap a neighbouring
    # day's overnight tail); this avoids rejection sampling.
    local_date = at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    offsets = draw(st.lists(st.sampled_from([-1, 0]) | st.integers(-2, 10), unique=True, max_size=4))
    accepted: list[dict[str, object]] = []
    schedule = parse_schedule(timezone=zone, weekly=weekly, exceptions=[])
    for offset in offsets:
        candidate = {
            "date": (local_date + dt.timedelta(days=offset)).isoformat(),
            "intervals": draw(st.just([]) | st.just([span("00:00", "24:00")]) | day_intervals()),
        }
        try:
            schedule = parse_schedule(timezone=zone, weekly=weekly, exceptions=[*accepted, candidate])
        except ValidationError:
            continue
        accepted.append(candidate)
    return schedule, at


@PROPERTY_SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_next_change_is_the_first_instant_where_the_state_flips(
    scenario: tuple[Schedule, dt.datetime], data: st.DataObject
) -> None:
    schedule, after = scenario
    state = is_open(schedule=schedule, at=after)
    change = next_change(schedule=schedule, after=after)

    if change is None:
        samples = [after + EPSILON] + [after + dt.timedelta(hours=h) for h in range(1, 8 * 24 + 1)]
        assert all(is_open(schedule=schedule, at=t) == state for t in samples)
        return

    assert change > after
    assert change.tzinfo is dt.UTC
    assert is_open(schedule=schedule, at=change) != state
    fractions = data.draw(st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=5))
    gap = change - after
    samples = [after + EPSILON, change - EPSILON, *(after + gap * f for f in fractions)]
    samples += [after + dt.timedelta(hours=h) for h in range(1, 49)]
    for t in samples:
        if after < t < change:
            assert is_open(schedule=schedule, at=t) == state, t
    # Asking again from just before the flip finds the same flip.
    if change - EPSILON > after:
        assert next_change(schedule=schedule, after=change - EPSILON) == change


def _wall_clock_oracle(schedule: Schedule, at: dt.datetime) -> bool:
    """Naive reading of the contract: compare local wall-clock readings.

    Only valid where no DST transition is near, which is exactly what makes it
    an independent check of the overnight/exception rules.
    """
    wall = at.astimezone(zoneinfo.ZoneInfo(schedule.timezone)).replace(tzinfo=None)
    for day in (wall.date() - dt.timedelta(days=1), wall.date()):
        if day in schedule.exceptions:
            intervals = schedule.exceptions[day]
        else:
            intervals = schedule.weekly.get(day.weekday(), ())
        for interval in intervals:
            end_day = day if interval.end > interval.start else day + dt.timedelta(days=1)
            start = dt.datetime.combine(day, interval.start)
            end = dt.datetime.combine(end_day, interval.end)
            if start <= wall < end:
                return True
    return False


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_is_open_agrees_with_wall_clock_reading_away_from_dst_changes(
    scenario: tuple[Schedule, dt.datetime],
) -> None:
    schedule, at = scenario
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    # The wall-clock reading is only meaningful when the offset is the same
    # two days either side of `at`.
    offsets = {(at + dt.timedelta(days=d)).astimezone(zone).utcoffset() for d in (-2, 0, 2)}
    if len(offsets) > 1:
        return
    assert is_open(schedule=schedule, at=at) == _wall_clock_oracle(schedule, at)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_schedule_to_json_round_trips_for_random_schedules(
    scenario: tuple[Schedule, dt.datetime],
) -> None:
    schedule, _ = scenario
    assert parse_schedule(**schedule_to_json(schedule)) == schedule


json_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["09:00", "24:00", "00:00", "2026-12-24", "monday", PRAGUE]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["from", "to", "date", "intervals", "monday", "funday"]) | st.text(max_size=3),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@PROPERTY_SETTINGS
@given(timezone=json_junk, weekly=json_junk, exceptions=json_junk)
def test_parse_schedule_raises_nothing_but_validation_error(
    timezone: object, weekly: object, exceptions: object
) -> None:
    try:
        parse_schedule(timezone=timezone, weekly=weekly, exceptions=exceptions)
    except ValidationError as error:
        assert set(error.message_dict) <= {"timezone", "weekly", "exceptions"}
