from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from groups.models import Group


class OfflineMessage(models.Model):
    """A visitor's message left while the chat box was offline."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="offline_messages")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="offline_messages")
    name = models.CharField(_("name"), max_length=100)
    email = models.EmailField(_("e-mail"), max_length=254)
    message = models.TextField(_("message"), max_length=5000)
    page_url = models.URLField(_("page"), max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("offline message")
        verbose_name_plural = _("offline messages")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"
