from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from groups.models import Group
from hours.schedule import Schedule, parse_schedule


class OpeningHours(models.Model):
    """A weekly schedule with date exceptions, for an account or for one group.

    A group's own schedule replaces the account's for that group. ``weekly`` and
    ``exceptions`` hold the public JSON shape; ``parse_schedule`` is the one
    validator and the evaluator's input.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="opening_hours")
    group = models.OneToOneField(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="opening_hours")
    enabled = models.BooleanField(_("enabled"), default=False)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    weekly = models.JSONField(_("weekly hours"), default=dict, blank=True)
    exceptions = models.JSONField(_("exceptions"), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(group__isnull=True), name="one_account_schedule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.group_id or '-'}"

    def clean(self) -> None:
        if self.group_id and self.group.account_id != self.account_id:
            raise ValidationError({"group": _("The group belongs to another account.")})
        self.to_schedule()

    def to_schedule(self) -> Schedule:
        return parse_schedule(timezone=self.timezone, weekly=self.weekly, exceptions=self.exceptions)
