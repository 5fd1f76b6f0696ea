from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Operator, Status


class Source(models.TextChoices):
    DASHBOARD = "dashboard", _("Dashboard")
    API = "api", _("API")
    MOBILE = "mobile", _("Mobile app")
    LOGOUT = "logout", _("Logout")
    STALE_SWEEP = "stale_sweep", _("Stale sweep")
    ADMIN = "admin", _("Admin")


class StatusEvent(models.Model):
    """Audit trail: one row per real change of an operator's chosen status."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="status_events")
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="status_events")
    old = models.CharField(max_length=10, choices=Status.choices)
    new = models.CharField(max_length=10, choices=Status.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    device = models.CharField(max_length=80, blank=True)
    at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    class Meta:
        verbose_name = _("status event")
        verbose_name_plural = _("status events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "-at"]), models.Index(fields=["operator", "-at"])]

    def __str__(self) -> str:
        return f"{self.operator_id} {self.old}→{self.new} ({self.source})"


class ChatBoxEvent(models.Model):
    """Audit trail of what visitors saw: one row per chat box flip (account or group)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="chat_box_events")
    group_key = models.CharField(max_length=50, blank=True, help_text=_("Empty for the account-level chat box."))
    old = models.CharField(max_length=10, choices=Status.choices)
    new = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=32)
    version = models.PositiveBigIntegerField()
    at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    class Meta:
        verbose_name = _("chat box event")
        verbose_name_plural = _("chat box events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["account", "-at"])]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.group_key or '-'} {self.old}→{self.new}"
