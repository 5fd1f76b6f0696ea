"""Reads of opening hours."""

from accounts.models import Account
from groups.models import Group
from hours.models import OpeningHours


def opening_hours_get(*, account: Account, group: Group | None = None) -> OpeningHours:
    """The stored schedule, or an unsaved disabled one in the account's time zone."""
    hours = OpeningHours.objects.filter(account=account, group=group).first()
    return hours or OpeningHours(account=account, group=group, enabled=False, timezone=account.timezone)
