"""Writes to opening hours; each announces the change to the chat box (``accounts.signals``)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Account
from accounts.signals import chat_box_inputs_changed
from groups.models import Group
from hours.models import OpeningHours
from hours.schedule import parse_schedule, schedule_to_json


@transaction.atomic
def opening_hours_set(
    *, account: Account, group: Group | None = None, enabled: bool, timezone: str, weekly: dict, exceptions: list
) -> OpeningHours:
    """Validate (``ValidationError`` with field messages) and replace a schedule."""
    if group is not None and group.account_id != account.id:
        raise ValidationError({"group": _("The group belongs to another account.")})
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
    chat_box_inputs_changed.send(sender=OpeningHours, account_id=account.id)
    return hours


@transaction.atomic
def opening_hours_delete(*, hours: OpeningHours) -> None:
    """Remove a schedule: the account (or the group) is open whenever staffed."""
    account_id = hours.account_id
    hours.delete()
    chat_box_inputs_changed.send(sender=OpeningHours, account_id=account_id)
