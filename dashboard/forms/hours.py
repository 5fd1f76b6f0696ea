"""The weekly opening-hours editor: rows of from/to inputs per weekday and a
list of date exceptions, turned into the public JSON shape of the schedule.

The rows are repeated inputs (``monday_from``/``monday_to``, ``exception_date``/
``exception_kind``/``exception_hours``) read with ``getlist`` in order, so the
page can add and remove rows freely; the submitted text is kept as typed and
shown again next to its error.
"""

import datetime
import re
import zoneinfo
from dataclasses import dataclass, field
from functools import cache

from django.core.exceptions import ValidationError
from django.utils.dates import WEEKDAYS as WEEKDAY_NAMES
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hours.models import OpeningHours
from hours.schedule import MAX_EXCEPTIONS, MAX_INTERVALS_PER_DAY, WEEKDAYS

TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# "09:00-12:00, 13:00 – 17:00": hyphen, en dash or em dash between the times.
INTERVAL = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–—]\s*(\d{1,2}:\d{2})\s*$")
EXCEPTION_KINDS = [("closed", gettext_lazy("Closed all day")), ("hours", gettext_lazy("Special hours"))]
# The schedule's own caps (hours.schedule, which the service applies to every door): checked here
# first only to say so next to the rows, in the operator's language.
MAX_ROWS = MAX_INTERVALS_PER_DAY


@cache
def timezone_choices() -> list[str]:
    return sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


@dataclass
class IntervalRow:
    start: str = ""
    end: str = ""


@dataclass
class DayRows:
    key: str
    label: str
    rows: list[IntervalRow]
    errors: list[str] = field(default_factory=list)


@dataclass
class ExceptionRow:
    date: str = ""
    kind: str = "closed"
    hours: str = ""
    errors: list[str] = field(default_factory=list)


def _input_time(value: str) -> str:
    # A time input cannot show "24:00"; "00:00" as an end means the same midnight.
    return "00:00" if value == "24:00" else value


def _normal_time(value: str) -> str:
    hours, _sep, minutes = value.partition(":")
    return f"{int(hours):02d}:{minutes}"


class OpeningHoursForm:
    """Not a Django ``Form``: its rows come and go. Same life cycle though:
    bind ``data``, call ``is_valid()``, read ``cleaned``, show ``errors``."""

    def __init__(self, *, hours: OpeningHours, data=None) -> None:
        self.hours = hours
        self.data = data
        self.non_field_errors: list[str] = []
        self.timezone_errors: list[str] = []
        self.cleaned: dict = {}
        if data is None:
            self.enabled = hours.enabled
            self.timezone = hours.timezone
            self.days = [
                DayRows(
                    key=key,
                    label=str(WEEKDAY_NAMES[index]),
                    rows=[
                        IntervalRow(interval["from"], _input_time(interval["to"]))
                        for interval in (hours.weekly or {}).get(key, [])
                    ],
                )
                for index, key in enumerate(WEEKDAYS)
            ]
            self.exceptions = [
                ExceptionRow(
                    date=entry["date"],
                    kind="hours" if entry["intervals"] else "closed",
                    hours=", ".join(f"{item['from']}–{item['to']}" for item in entry["intervals"]),
                )
                for entry in hours.exceptions or []
            ]
        else:
            self.enabled = data.get("enabled") == "on"
            self.timezone = data.get("timezone", "").strip()
            self.days = []
            for index, key in enumerate(WEEKDAYS):
                starts, ends = data.getlist(f"{key}_from"), data.getlist(f"{key}_to")
                rows = [IntervalRow(start.strip(), end.strip()) for start, end in zip(starts, ends, strict=False)]
                self.days.append(DayRows(key=key, label=str(WEEKDAY_NAMES[index]), rows=rows))
            dates, kinds, texts = (
                data.getlist("exception_date"),
                data.getlist("exception_kind"),
                data.getlist("exception_hours"),
            )
            self.exceptions = [
                ExceptionRow(date=day.strip(), kind=kind, hours=text.strip())
                for day, kind, text in zip(dates, kinds, texts, strict=False)
                if day.strip() or text.strip()
            ]

    # -- validation ---------------------------------------------------------
    def is_valid(self) -> bool:
        if self.data is None:
            return False
        if self.timezone not in timezone_choices():
            self.timezone_errors.append(_("Choose a time zone from the list."))
        weekly = {}
        for day in self.days:
            day.rows = [row for row in day.rows if row.start or row.end]
            weekly[day.key] = self._intervals(day.rows, day.errors)
        exceptions = []
        seen: set[str] = set()
        if len(self.exceptions) > MAX_EXCEPTIONS:
            # One message, not one per row: the rows are not looked at.
            self.non_field_errors.append(
                _(
                    "At most %(limit)s dates can have other hours; this list has %(count)s. "
                    "Remove some, past dates first."
                )
                % {"limit": MAX_EXCEPTIONS, "count": len(self.exceptions)}
            )
            return False
        for row in self.exceptions:
            exceptions.append({"date": row.date, "intervals": self._exception_intervals(row)})
            if row.date in seen:
                row.errors.append(_("This date is already in the list."))
            seen.add(row.date)
        if self.has_errors():
            return False
        self.cleaned = {"enabled": self.enabled, "timezone": self.timezone, "weekly": weekly, "exceptions": exceptions}
        return True

    def _intervals(self, rows: list[IntervalRow], errors: list[str]) -> list[dict]:
        if len(rows) > MAX_ROWS:
            errors.append(_("At most %(count)s intervals per day.") % {"count": MAX_ROWS})
        intervals = []
        for row in rows:
            if not TIME.match(row.start) or not TIME.match(row.end):
                errors.append(_("Enter both times as HH:MM, for example 09:00 and 17:00."))
                continue
            if row.start == row.end:
                if row.start != "00:00":
                    errors.append(_("An interval cannot start and end at the same time."))
                    continue
                # 00:00–00:00 in two time inputs is the only way to say "all day".
                intervals.append({"from": "00:00", "to": "24:00"})
                continue
            intervals.append({"from": row.start, "to": row.end})
        return intervals

    def _exception_intervals(self, row: ExceptionRow) -> list[dict]:
        try:
            datetime.date.fromisoformat(row.date)
            valid_date = len(row.date) == 10
        except ValueError:
            valid_date = False
        if not valid_date:
            row.errors.append(_("Enter a date."))
        if row.kind != "hours":
            return []
        parts = [part for part in row.hours.split(",") if part.strip()]
        if not parts:
            row.errors.append(_("Enter the hours, for example 10:00–14:00, or choose “Closed all day”."))
            return []
        rows = []
        for part in parts:
            match = INTERVAL.match(part)
            if match is None:
                row.errors.append(_("Write the hours like 10:00–14:00, 15:00–18:00."))
                return []
            start, end = (_normal_time(value) for value in match.groups())
            rows.append(IntervalRow(start, "00:00" if end == "24:00" else end))
        return self._intervals(rows, row.errors)

    def add_blank(self, *, day: str | None, exception: bool) -> None:
        for item in self.days:
            if item.key == day and len(item.rows) < MAX_ROWS:
                item.rows.append(IntervalRow())
        if exception and len(self.exceptions) < MAX_EXCEPTIONS:
            self.exceptions.append(ExceptionRow())

    def has_errors(self) -> bool:
        return bool(
            self.non_field_errors
            or self.timezone_errors
            or any(day.errors for day in self.days)
            or any(row.errors for row in self.exceptions)
        )

    def add_service_errors(self, error: ValidationError) -> None:
        """Place the schedule validator's findings next to the day or date they
        name. Every format problem was caught above, so what remains is an
        overlap between intervals."""
        messages = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
        for key, items in messages.items():
            for message in items:
                if key == "timezone":
                    self.timezone_errors.append(_("Choose a time zone from the list."))
                elif not self._place_overlap(message):
                    self.non_field_errors.append(message)

    def _place_overlap(self, message: str) -> bool:
        if "overlap" not in message:
            return False
        subject = message.split(":", 1)[0]
        text = _("These hours overlap other hours (also check the overnight hours of the day before).")
        for day in self.days:
            if subject == day.key:
                day.errors.append(text)
                return True
        for row in self.exceptions:
            if row.date and row.date in message:
                row.errors.append(text)
                return True
        return False

    # -- display ---------------------------------------------------------------
    @property
    def timezones(self) -> list[str]:
        return timezone_choices()

    @property
    def exception_kinds(self) -> list[tuple[str, str]]:
        return [(value, str(label)) for value, label in EXCEPTION_KINDS]
