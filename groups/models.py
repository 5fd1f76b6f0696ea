from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Operator

group_key_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,49}$",
    _("Use 1–50 lowercase letters, digits, hyphens or underscores, no spaces."),
    code="invalid_key",
)


class Group(models.Model):
    """A department: a widget with ``data-group=key`` shows this group's status."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="groups", verbose_name=_("account"))
    key = models.CharField(_("key"), max_length=50, validators=[group_key_validator])
    name = models.CharField(_("name"), max_length=120)
    members = models.ManyToManyField(
        Operator, through="Membership", related_name="chat_groups", blank=True, verbose_name=_("members")
    )

    class Meta:
        verbose_name = _("group")
        verbose_name_plural = _("groups")
        ordering = ["name", "key"]
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="group_key_unique_per_account")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Membership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["group", "operator"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.operator_id} in {self.group_id}"
