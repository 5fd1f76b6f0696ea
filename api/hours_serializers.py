"""Shape of opening hours in the REST API.

The JSON is checked by ``hours.schedule.parse_schedule`` alone (through the
service): these fields only document the shape and pass the values on.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import StrictBooleanField, StrictCharField
from hours.schedule import MAX_EXCEPTIONS, MAX_INTERVALS_PER_DAY, WEEKDAYS

TIME = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$", "example": "09:00"}
END_TIME = {"type": "string", "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$", "example": "17:00"}
INTERVALS = {
    "type": "array",
    "maxItems": MAX_INTERVALS_PER_DAY,
    "items": {
        "type": "object",
        "properties": {"from": TIME, "to": END_TIME},
        "required": ["from", "to"],
        "additionalProperties": False,
    },
}
WEEKLY = {
    "type": "object",
    "properties": {day: INTERVALS for day in WEEKDAYS},
    "additionalProperties": False,
    "description": "Open intervals per weekday in wall-clock time; `to` ≤ `from` crosses midnight, "
    '"24:00" ends the day. A missing day is closed.',
}
EXCEPTIONS = {
    "type": "array",
    "maxItems": MAX_EXCEPTIONS,
    "items": {
        "type": "object",
        "properties": {"date": {"type": "string", "format": "date"}, "intervals": INTERVALS},
        "required": ["date", "intervals"],
        "additionalProperties": False,
    },
    "description": "Dates with other hours; empty `intervals` = closed all day.",
}


@extend_schema_field(WEEKLY)
class WeeklyField(serializers.JSONField):
    pass


@extend_schema_field(EXCEPTIONS)
class ExceptionsField(serializers.JSONField):
    pass


class OpeningHoursSerializer(serializers.Serializer):
    enabled = StrictBooleanField(help_text=_("Off: the chat box ignores these hours."))
    timezone = StrictCharField(
        max_length=64, required=False, help_text=_("IANA time zone of the hours; default: the account's.")
    )
    weekly = WeeklyField(required=False, default=dict)
    exceptions = ExceptionsField(required=False, default=list)

    def to_representation(self, hours) -> dict:
        # Every weekday is present in answers, even for hours never saved.
        return {
            "enabled": hours.enabled,
            "timezone": hours.timezone,
            "weekly": {day: (hours.weekly or {}).get(day, []) for day in WEEKDAYS},
            "exceptions": hours.exceptions or [],
        }
