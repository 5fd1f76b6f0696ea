"""Opening-hours schedule: parsing/validation of the public JSON shape and a
pure evaluator (``is_open`` / ``next_change``).

Nothing here touches the database or Django settings, so it can be used from
views, Celery tasks and tests alike.  The only Django import is
``ValidationError`` so that API layers can surface ``message_dict`` directly.

Semantics
---------
An interval on local date D with ``from``=F and ``to``=T is open for the wall
clock range [D F, D T) when T > F and [D F, (D+1) T) when T <= F (it crosses
midnight; ``to`` "24:00"/"00:00" is the midnight that ends D).  An overnight
interval belongs to the date it starts on, so an exception for D replaces D's
intervals but never cancels the tail of D-1's overnight interval.

Wall clock -> instant (the DST rule)
------------------------------------
* Ambiguous wall time (fall-back, the clock shows it twice): the FIRST
  occurrence (``fold=0``).  So 01:00-05:00 on a fall-back day lasts 5 real
  hours, and 02:30-04:00 in Prague on 2026-10-25 opens at 02:30 CEST.
* Non-existent wall time (spring-forward gap): the moment of the jump, i.e.
  the first instant at which the clock shows that time or later.  Prague
  2026-03-29 02:30 -> 03:00 CEST = 01:00 UTC.  So 01:00-05:00 on a
  spring-forward day lasts 3 real hours, and an interval lying entirely inside
  the gap (02:00-02:30 in Prague) is empty and never open.

Both rules make the wall->instant mapping monotone non-decreasing, which is
what lets ``next_change`` treat interval boundaries as a sorted stream.
"""

import datetime
import zoneinfo
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from accounts.zones import is_known_zone

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Caps keep a single hostile payload from making evaluation, validation or the
# pages that show a schedule slow. Every door (the API, the dashboard, the
# Django admin) saves through ``parse_schedule``, so these are the only limits.
MAX_INTERVALS_PER_DAY = 12
# One exception for every day of a whole (leap) year. Exceptions are holidays
# and one-off days: a busy calendar has a few dozen a year, and past dates stay
# listed until someone removes them, so this is years of holidays. Without a
# cap, 10,000 exceptions made the dashboard's hours page 8.2 MB of HTML (every
# exception is a form row) and each chat box recompute slower.
MAX_EXCEPTIONS = 366
# At most this many messages per field are reported; the rest are only counted,
# so 40,000 invalid entries do not make a megabyte of error list.
MAX_ERRORS = 20
# 400 days covers a full year of exceptions plus slack; a schedule whose state
# does not change within that window is treated as "never changes".
NEXT_CHANGE_HORIZON_DAYS = 400

_MINUTES_PER_DAY = 24 * 60
_ONE_MICROSECOND = datetime.timedelta(microseconds=1)
_UTC = datetime.UTC


@dataclass(frozen=True)
class Interval:
    """Wall-clock opening interval on one local date.

    ``end <= start`` means the interval crosses midnight; ``end == time(0, 0)``
    is the midnight that ends the day (written "24:00" in JSON), so
    ``Interval(time(0), time(0))`` is the whole day.
    """

    start: datetime.time
    end: datetime.time

    def __post_init__(self) -> None:
        # Guard direct construction by other modules: the evaluator and the
        # JSON round trip rely on these invariants that parse_schedule enforces.
        for value in (self.start, self.end):
            if not isinstance(value, datetime.time):
                raise TypeError(f"Interval bounds must be datetime.time, got {value!r}")
            if value.tzinfo is not None or value.second or value.microsecond:
                raise ValueError(f"Interval bounds must be naive whole minutes, got {value!r}")
        if self.start == self.end and self.start != datetime.time(0, 0):
            raise ValueError("Interval start and end must differ (except 00:00-24:00)")

    def _minutes(self) -> tuple[int, int]:
        """(start, end) in minutes from the start of its own date; end may be
        past 1440 for an overnight interval."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if end <= start:
            end += _MINUTES_PER_DAY
        return start, end


@dataclass(frozen=True)
class Schedule:
    timezone: str
    # 0=monday..6=sunday; intervals sorted by start.  Missing day = closed.
    weekly: dict[int, tuple[Interval, ...]]
    # An empty tuple means closed all day.
    exceptions: dict[datetime.date, tuple[Interval, ...]]


# --------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------


class _Problems:
    """One field's messages: the first ``MAX_ERRORS`` are kept, the rest counted."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.more = 0

    def append(self, message: str) -> None:
        if len(self.messages) < MAX_ERRORS:
            self.messages.append(message)
        else:
            self.more += 1

    def extend(self, messages: list[str]) -> None:
        for message in messages:
            self.append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def report(self) -> list[str]:
        if not self.more:
            return self.messages
        problems = "problem" if self.more == 1 else "problems"
        return [*self.messages, f"... and {self.more} more {problems} not listed; fix these first."]


def _show(value: object) -> str:
    # Echo user input back in messages, but never a megabyte of it.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_time(value: object, *, allow_24: bool) -> datetime.time | None:
    """Strict "HH:MM" 24-hour; returns None when invalid."""
    # isascii() matters: str.isdigit() accepts e.g. Arabic-Indic digits,
    # which int() would happily convert.
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return None
    hh, mm = value[:2], value[3:]
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()):
        return None
    hour, minute = int(hh), int(mm)
    if allow_24 and hour == 24 and minute == 0:
        return datetime.time(0, 0)
    if hour > 23 or minute > 59:
        return None
    return datetime.time(hour, minute)


def _format_time(value: datetime.time, *, is_end: bool) -> str:
    # An end at midnight is the end of the day; "24:00" says so unambiguously.
    if is_end and value == datetime.time(0, 0):
        return "24:00"
    return f"{value.hour:02d}:{value.minute:02d}"


def _show_interval(interval: Interval) -> str:
    return f'"{_format_time(interval.start, is_end=False)}-{_format_time(interval.end, is_end=True)}"'


def _parse_date(value: object) -> datetime.date | None:
    # date.fromisoformat() also accepts "20261224" and "2026-W52-4"; the public
    # format is exactly YYYY-MM-DD, so check the shape first.
    if not isinstance(value, str) or len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    digits = value[:4] + value[5:7] + value[8:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _parse_intervals(raw: object, *, label: str, errors: _Problems) -> tuple[Interval, ...]:
    """Parse one day's list of {"from","to"} objects, appending messages to
    ``errors``.  Returns the valid intervals sorted by start."""
    if not isinstance(raw, list):
        errors.append(f"{label}: intervals must be a list, got {_show(raw)}.")
        return ()
    if len(raw) > MAX_INTERVALS_PER_DAY:
        errors.append(f"{label}: at most {MAX_INTERVALS_PER_DAY} intervals per day are allowed, got {len(raw)}.")
        return ()
    intervals: list[Interval] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"from", "to"}:
            errors.append(f'{label}: each interval must be an object with exactly "from" and "to", got {_show(item)}.')
            continue
        raw_from, raw_to = item["from"], item["to"]
        start = _parse_time(raw_from, allow_24=False)
        end = _parse_time(raw_to, allow_24=True)
        if start is None:
            errors.append(f'{label}: "from" {_show(raw_from)} is not a valid time; use 24-hour "HH:MM".')
        if end is None:
            errors.append(
                f'{label}: "to" {_show(raw_to)} is not a valid time; use 24-hour "HH:MM" '
                f'(or "24:00" for the end of the day).'
            )
        if start is None or end is None:
            continue
        # "00:00"-"24:00" is the whole day; any other equal pair (including
        # "00:00"-"00:00") is almost certainly a mistake, so make people say
        # "24:00" explicitly.
        if start == end and raw_to != "24:00":
            errors.append(
                f'{label}: "from" and "to" are both {_show(raw_from)}; an interval must not '
                f'be empty (use "00:00"-"24:00" for the whole day).'
            )
            continue
        intervals.append(Interval(start=start, end=end))
    intervals.sort(key=lambda interval: interval.start)
    return tuple(intervals)


def _same_day_overlaps(intervals: tuple[Interval, ...], *, label: str) -> list[str]:
    messages: list[str] = []
    spans = [(interval, *interval._minutes()) for interval in intervals]
    for index, (first, first_start, first_end) in enumerate(spans):
        for second, second_start, second_end in spans[index + 1 :]:
            if first_start < second_end and second_start < first_end:
                messages.append(f"{label}: intervals {_show_interval(first)} and {_show_interval(second)} overlap.")
    return messages


def _spill_overlaps(
    today: tuple[Interval, ...],
    tomorrow: tuple[Interval, ...],
    *,
    today_label: str,
    tomorrow_label: str,
) -> list[str]:
    """Overnight intervals of ``today`` whose tail overlaps ``tomorrow``'s."""
    messages: list[str] = []
    for overnight in today:
        _, end = overnight._minutes()
        tail_end = end - _MINUTES_PER_DAY
        if tail_end <= 0:
            continue
        for other in tomorrow:
            other_start, _ = other._minutes()
            # The tail is [0, tail_end) of tomorrow.
            if other_start < tail_end:
                messages.append(
                    f"{today_label}: overnight interval {_show_interval(overnight)} "
                    f"overlaps {tomorrow_label} interval {_show_interval(other)}."
                )
    return messages


def parse_schedule(*, timezone: object, weekly: object, exceptions: object) -> Schedule:
    """Validate the public JSON shape and build a ``Schedule``.

    Raises ``ValidationError`` with a ``message_dict`` keyed by "timezone",
    "weekly" and/or "exceptions"; all problems are reported at once, up to
    ``MAX_ERRORS`` messages per field and a count of the rest.
    """
    errors: dict[str, list[str]] = {}

    zone_name = timezone if isinstance(timezone, str) else ""
    if not zone_name or not is_known_zone(zone_name):
        errors["timezone"] = [f"{_show(timezone)} is not a known IANA time zone (e.g. 'Europe/Prague')."]

    weekly_errors = _Problems()
    parsed_weekly: dict[int, tuple[Interval, ...]] = {day: () for day in range(7)}
    if not isinstance(weekly, dict):
        weekly_errors.append(f"Weekly hours must be an object keyed by weekday, got {_show(weekly)}.")
    else:
        for key, raw_intervals in weekly.items():
            if key not in WEEKDAYS:
                weekly_errors.append(f"{_show(key)} is not a weekday; use one of {', '.join(WEEKDAYS)}.")
                continue
            parsed_weekly[WEEKDAYS.index(key)] = _parse_intervals(raw_intervals, label=key, errors=weekly_errors)
        for day in range(7):
            weekly_errors.extend(_same_day_overlaps(parsed_weekly[day], label=WEEKDAYS[day]))
            # Sunday's overnight interval spills into Monday of the next week.
            next_day = (day + 1) % 7
            weekly_errors.extend(
                _spill_overlaps(
                    parsed_weekly[day],
                    parsed_weekly[next_day],
                    today_label=WEEKDAYS[day],
                    tomorrow_label=f"{WEEKDAYS[next_day]}'s",
                )
            )
    if weekly_errors:
        errors["weekly"] = weekly_errors.report()

    exception_errors = _Problems()
    parsed_exceptions: dict[datetime.date, tuple[Interval, ...]] = {}
    if not isinstance(exceptions, list):
        exception_errors.append(f"Exceptions must be a list, got {_show(exceptions)}.")
    elif len(exceptions) > MAX_EXCEPTIONS:
        # Refused before any entry is looked at: the answer costs the same for 400 or 400,000.
        exception_errors.append(
            f"At most {MAX_EXCEPTIONS} exceptions are allowed, got {len(exceptions)}; remove some (past dates first)."
        )
    else:
        for entry in exceptions:
            if not isinstance(entry, dict) or set(entry) != {"date", "intervals"}:
                exception_errors.append(
                    f'Each exception must be an object with exactly "date" and "intervals", got {_show(entry)}.'
                )
                continue
            day = _parse_date(entry["date"])
            if day is None:
                exception_errors.append(f'{_show(entry["date"])} is not a valid date; use "YYYY-MM-DD".')
                continue
            if day in parsed_exceptions:
                exception_errors.append(f"{day.isoformat()}: date appears more than once.")
                continue
            intervals = _parse_intervals(entry["intervals"], label=day.isoformat(), errors=exception_errors)
            exception_errors.extend(_same_day_overlaps(intervals, label=day.isoformat()))
            parsed_exceptions[day] = intervals

        # Neighbour checks only make sense once the weekly hours are sane;
        # otherwise every weekly mistake would be reported twice.
        if not weekly_errors:
            exception_errors.extend(_exception_neighbour_overlaps(parsed_weekly, parsed_exceptions))
    if exception_errors:
        errors["exceptions"] = exception_errors.report()

    if errors:
        raise ValidationError(errors)
    return Schedule(timezone=zone_name, weekly=parsed_weekly, exceptions=parsed_exceptions)


def _exception_neighbour_overlaps(
    weekly: dict[int, tuple[Interval, ...]],
    exceptions: dict[datetime.date, tuple[Interval, ...]],
) -> list[str]:
    """Overlaps between an exception day and the day before/after it.

    The previous day's overnight tail survives an exception (see module
    docstring), so an exception that opens during that tail would describe the
    same open time twice; reject it like any other overlap.
    """

    def describe(day: datetime.date) -> tuple[tuple[Interval, ...], str]:
        if day in exceptions:
            return exceptions[day], f"{day.isoformat()}"
        return weekly.get(day.weekday(), ()), f"{WEEKDAYS[day.weekday()]} {day.isoformat()}"

    messages: list[str] = []
    for day in sorted(exceptions):
        label = day.isoformat()
        # Today's overnight tail vs tomorrow (exception or weekly).
        if day < datetime.date.max:
            tomorrow = day + datetime.timedelta(days=1)
            tomorrow_intervals, tomorrow_label = describe(tomorrow)
            messages.extend(
                _spill_overlaps(
                    exceptions[day],
                    tomorrow_intervals,
                    today_label=label,
                    tomorrow_label=f"{tomorrow_label}'s",
                )
            )
        # Yesterday's tail vs today, unless yesterday is itself an exception
        # (then the check above already covered that pair).
        if day > datetime.date.min:
            yesterday = day - datetime.timedelta(days=1)
            if yesterday not in exceptions:
                yesterday_intervals, yesterday_label = describe(yesterday)
                messages.extend(
                    _spill_overlaps(
                        yesterday_intervals,
                        exceptions[day],
                        today_label=f"{yesterday_label} (weekly hours)",
                        tomorrow_label=f"exception {label}'s",
                    )
                )
    return messages


def schedule_to_json(schedule: Schedule) -> dict[str, object]:
    """Inverse of ``parse_schedule``: all seven days, exceptions sorted by date."""

    def intervals_json(intervals: tuple[Interval, ...]) -> list[dict[str, str]]:
        return [
            {
                "from": _format_time(interval.start, is_end=False),
                "to": _format_time(interval.end, is_end=True),
            }
            for interval in sorted(intervals, key=lambda interval: interval.start)
        ]

    return {
        "timezone": schedule.timezone,
        "weekly": {name: intervals_json(schedule.weekly.get(day, ())) for day, name in enumerate(WEEKDAYS)},
        "exceptions": [
            {"date": day.isoformat(), "intervals": intervals_json(schedule.exceptions[day])}
            for day in sorted(schedule.exceptions)
        ],
    }


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


def _require_aware(value: datetime.datetime, *, name: str) -> None:
    # A naive datetime has no defined instant; guessing a zone would silently
    # shift opening hours, so refuse.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value!r}")


def _wall_to_utc(wall: datetime.datetime, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """Instant at which the wall clock of ``zone`` shows naive ``wall``.

    See the module docstring for the DST rule: ambiguous -> first occurrence,
    non-existent -> the moment of the jump.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        # Exists (fold=0 is already the first occurrence when ambiguous).
        return first
    # In a gap.  PEP 495: fold=0 applies the pre-transition offset, which lands
    # after the jump; fold=1 applies the post-transition offset, which lands
    # before it.  zoneinfo does not expose transition instants, so binary-search
    # for the first instant whose wall clock reads >= ``wall``.  Microsecond
    # resolution, ~32 steps for a 1-hour gap, and gaps are rare.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)  # clock still < wall
    high = first  # clock already > wall
    while high - low > _ONE_MICROSECOND:
        middle = low + (high - low) // 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high


def _intervals_on(schedule: Schedule, day: datetime.date) -> tuple[Interval, ...]:
    if day in schedule.exceptions:
        return schedule.exceptions[day]
    return schedule.weekly.get(day.weekday(), ())


def _ranges_on(
    schedule: Schedule, day: datetime.date, zone: zoneinfo.ZoneInfo
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """UTC [start, end) ranges of the intervals starting on local ``day``,
    sorted by start; empty ranges (inside a DST gap) are dropped."""
    ranges: list[tuple[datetime.datetime, datetime.datetime]] = []
    for interval in sorted(_intervals_on(schedule, day), key=lambda interval: interval.start):
        end_day = day if interval.end > interval.start else day + datetime.timedelta(days=1)
        start = _wall_to_utc(datetime.datetime.combine(day, interval.start), zone)
        end = _wall_to_utc(datetime.datetime.combine(end_day, interval.end), zone)
        if end > start:
            ranges.append((start, end))
    return ranges


def is_open(*, schedule: Schedule, at: datetime.datetime) -> bool:
    _require_aware(at, name="at")
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    instant = at.astimezone(_UTC)
    local_day = instant.astimezone(zone).date()
    # An interval lives within [its date 00:00, date+2 00:00) wall time, so
    # dates D-1 and D suffice; D-2 and D+1 add slack for a fall-back that
    # crosses midnight (the same local date occurring on both sides of it).
    for offset in (-2, -1, 0, 1):
        day = local_day + datetime.timedelta(days=offset)
        for start, end in _ranges_on(schedule, day, zone):
            if start <= instant < end:
                return True
    return False


def next_change(*, schedule: Schedule, after: datetime.datetime) -> datetime.datetime | None:
    """First instant t > ``after`` with is_open(t) != is_open(after), in UTC.

    None if the state does not change within NEXT_CHANGE_HORIZON_DAYS.
    """
    _require_aware(after, name="after")
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    instant = after.astimezone(_UTC)
    first_day = instant.astimezone(zone).date() - datetime.timedelta(days=2)
    last_day = first_day + datetime.timedelta(days=NEXT_CHANGE_HORIZON_DAYS + 2)
    # Every interval starting on a date <= last_day starts before this instant
    # and every later one starts at or after it, so the open/closed state is
    # fully known strictly before it.
    horizon = _wall_to_utc(
        datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time(0, 0)),
        zone,
    )

    # Ranges arrive sorted by start (dates ascending, intervals sorted within a
    # date, monotone wall->UTC mapping), so merge touching/overlapping ranges
    # on the fly: 17:00-24:00 followed by 00:00-06:00 is one open stretch and
    # midnight is not a change.  A merged range is final once the next range
    # starts strictly after its end.
    current: tuple[datetime.datetime, datetime.datetime] | None = None
    day = first_day
    while day <= last_day:
        for start, end in _ranges_on(schedule, day, zone):
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                change = _change_in_final_range(current, instant)
                if change is not None:
                    return change
            current = (start, end)
        day += datetime.timedelta(days=1)

    if current is None:
        return None
    merged_start, merged_end = current
    if merged_end < horizon:
        # Nothing else starts before the horizon, so this range is final.
        return _change_in_final_range(current, instant)
    # Still open at the horizon: only its opening can be a known change.
    return merged_start if instant < merged_start < horizon else None


def _change_in_final_range(
    merged: tuple[datetime.datetime, datetime.datetime], instant: datetime.datetime
) -> datetime.datetime | None:
    """Change point contributed by a maximal open range, if it is the next one.

    Ranges are visited in order and we return at the first hit, so when this
    range starts after ``instant`` no earlier range contained ``instant`` and
    the state at ``instant`` is closed.
    """
    start, end = merged
    if instant < start:
        return start
    if instant < end:
        return end
    return None
