"""Writes to opening hours; each refreshes the account's chat box."""

from django.db import transaction

from groups.models import Group
from hours.models import OpeningHours
from hours.schedule import parse_schedule, schedule_to_json
from presence.models import Account
from presence.services import chat_box_refresh_on_commit


@transaction.atomic
def opening_hours_set(
    *, account: Account, group: Group | None = None, enabled: bool, timezone: str, weekly: dict, exceptions: list
) -> OpeningHours:
    """Validate (``ValidationError`` with field messages) and replace a schedule."""
    schedule = parse_schedule(timezone=timezone, weekly=weekly, exceptions=exceptions)
    data = schedule_to_json(schedule)
    hours, _created = OpeningHours.objects.select_for_update().get_or_create(
        account=account, group=group, defaults={"timezone": data["timezone"]}
    )
    hours.enabled = enabled
    hours.timezone = data["timezone"]
    hours.weekly = data["weekly"]
    hours.exceptions = data["exceptions"]
    hours.save()
    chat_box_refresh_on_commit(account_id=account.id)
    return hours
