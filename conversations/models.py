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


# --- the FAQ bot (conversations.faq) ------------------------------------------------------

FAQ_QUESTION_MAX = 300
FAQ_ANSWER_MAX = 2000
FAQ_PHRASINGS_MAX = 20


class FaqEntry(models.Model):
    """A common question of an account's visitors and its answer: what the
    bot answers with and what operators are offered as a reply."""

    class Language(models.TextChoices):
        EN = "en", _("English")
        CS = "cs", _("Czech")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="faq_entries")
    # None: asked in any conversation; a group's entry only in that group's.
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="faq_entries")
    language = models.CharField(_("language"), max_length=5, choices=Language.choices)
    question = models.CharField(_("question"), max_length=FAQ_QUESTION_MAX)
    # Other ways visitors ask it: a list of strings.
    phrasings = models.JSONField(_("other phrasings"), default=list, blank=True)
    # Plain text; web addresses in it become links where it is shown.
    answer = models.TextField(_("answer"), max_length=FAQ_ANSWER_MAX)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("FAQ entry")
        verbose_name_plural = _("FAQ entries")
        ordering = ["account", "language", "question", "id"]

    def __str__(self) -> str:
        return self.question


class FaqAnswer(models.Model):
    """One answer of the bot in a conversation, and what the visitor made of it."""

    class Feedback(models.TextChoices):
        NONE = "", _("No feedback")
        HELPFUL = "helpful", _("That helped")
        TALK_TO_PERSON = "talk_to_person", _("Talk to a person")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="faq_answers")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="faq_answer")
    # Kept when the entry is deleted: the report still counts the answer.
    entry = models.ForeignKey(FaqEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="answers")
    question = models.TextField(_("visitor's question"), max_length=BODY_MAX)
    score = models.FloatField(_("score"))
    feedback = models.CharField(_("feedback"), max_length=20, choices=Feedback.choices, blank=True, default="")
    feedback_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("FAQ answer")
        verbose_name_plural = _("FAQ answers")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="faq_answer_account_recent")]
        constraints = [
            # The bot never answers the same entry twice in one conversation.
            models.UniqueConstraint(fields=["conversation", "entry"], name="faq_answer_once_per_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}: {self.entry_id}"


class FaqMiss(models.Model):
    """A visitor question the bot could not answer with confidence: what new
    entries are written from."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    question = models.TextField(_("visitor's question"), max_length=BODY_MAX)
    # The nearest entry and its score, below the bot's threshold (None: nothing near).
    nearest = models.ForeignKey(FaqEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.FloatField(_("score"), default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("unanswered question")
        verbose_name_plural = _("unanswered questions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="faq_miss_account_recent")]

    def __str__(self) -> str:
        return self.question[:60]
