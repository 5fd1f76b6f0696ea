"""Visitors, their conversations with the operators, and the messages."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Operator
from groups.models import Group

BODY_MAX = 4000
CLIENT_ID_MAX = 64
NAME_MAX = 100
PAGE_URL_MAX = 500


class Visitor(models.Model):
    """Someone on an account's website. Known by an opaque token the server
    issued; only its SHA-256 is stored (``widget.visitors.visitor_token_digest``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="visitors")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=NAME_MAX, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    language = models.CharField(_("language"), max_length=5, blank=True)
    first_page = models.URLField(_("first page"), max_length=PAGE_URL_MAX, blank=True)
    # The IANA time zone the visitor's browser reports (for "their local time"); empty when unknown.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("visitor")
        verbose_name_plural = _("visitors")

    def __str__(self) -> str:
        return self.name or self.email or f"#{self.pk}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="conversations")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        Operator, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_conversations"
    )
    page_url = models.URLField(_("page"), max_length=PAGE_URL_MAX, blank=True)
    # The last message's seq: the next message takes last_seq + 1 (under the row lock).
    last_seq = models.PositiveIntegerField(default=0)
    # The oldest visitor message no operator has answered yet, and its seq: a
    # "stretch" the busy message is sent for at most once.
    waiting_since = models.DateTimeField(null=True, blank=True)
    waiting_seq = models.PositiveIntegerField(null=True, blank=True)
    # The seq of the stretch the busy (or, on a box gone offline, offline)
    # message was sent for; rule 7's offline stretch is the same flag.
    busy_sent_seq = models.PositiveIntegerField(null=True, blank=True)
    offline_notified = models.BooleanField(default=False)
    # When replies were last e-mailed to the visitor, and up to which seq.
    emailed_at = models.DateTimeField(null=True, blank=True)
    emailed_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        indexes = [
            models.Index(fields=["account", "status", "-last_message_at", "-id"], name="conv_account_activity"),
            models.Index(fields=["visitor", "-last_message_at"], name="conv_visitor_activity"),
            models.Index(
                fields=["waiting_since"], name="conv_waiting", condition=models.Q(waiting_since__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.visitor}"


class Message(models.Model):
    class Author(models.TextChoices):
        VISITOR = "visitor", _("Visitor")
        OPERATOR = "operator", _("Operator")
        SYSTEM = "system", _("Automatic")
        BOT = "bot", _("Bot")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        OFFLINE = "offline", _("Offline message")
        BUSY = "busy", _("Busy message")
        FAQ = "faq", _("FAQ answer")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    author = models.CharField(max_length=10, choices=Author.choices)
    operator = models.ForeignKey(Operator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    body = models.TextField(max_length=BODY_MAX)
    client_id = models.CharField(max_length=CLIENT_ID_MAX)
    # An automatic message that asks the visitor for an e-mail address.
    asks_email = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            # A retry with the same client_id never makes a second message.
            models.UniqueConstraint(fields=["conversation", "client_id"], name="message_client_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}/{self.seq}"
