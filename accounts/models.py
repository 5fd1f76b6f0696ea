import hashlib
import secrets
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from accounts.zones import is_known_zone

STALE_AFTER_MIN = 30
STALE_AFTER_MAX = 3600
STALE_AFTER_DEFAULT = 120
BUSY_AFTER_MIN = 15
BUSY_AFTER_MAX = 600
BUSY_AFTER_DEFAULT = 45
AUTO_MESSAGE_MAX = 1000


def new_widget_key() -> str:
    # 128 bits of randomness: widget keys are public but must not be guessable.
    return secrets.token_urlsafe(16)


def validate_timezone(value: str) -> None:
    # The same check as opening hours use, so an account never holds a zone its schedules refuse.
    if not isinstance(value, str) or not is_known_zone(value):
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value}, code="timezone")


# A website with its localised domains and a staging copy needs a handful; each
# widget socket's Origin is looked up in the list, which every page shows.
MAX_ALLOWED_ORIGINS = 100


def validate_origins(value: list) -> None:
    if not isinstance(value, list):
        raise ValidationError(_("Allowed origins must be a list of origins."), code="origins")
    # Counted before any entry is looked at, and the first bad entry is the one message: bounded answers.
    if len(value) > MAX_ALLOWED_ORIGINS:
        raise ValidationError(
            _("At most %(limit)d allowed origins; %(count)d were given."),
            params={"limit": MAX_ALLOWED_ORIGINS, "count": len(value)},
            code="origins_max",
        )
    if not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Allowed origins must be a list of origins."), code="origins")
    for origin in value:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest or len(origin) > 200:
            raise ValidationError(
                _("%(origin)s is not an origin like https://www.example.com"), params={"origin": origin}
            )


class Status(models.TextChoices):
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")


class BotMode(models.TextChoices):
    OFF = "off", _("Off")
    WHEN_UNAVAILABLE = "when_unavailable", _("When nobody can answer")
    FIRST = "first", _("First, before the operators")


class Account(models.Model):
    class Language(models.TextChoices):
        EN = "en", _("English")
        CS = "cs", _("Czech")

    name = models.CharField(_("name"), max_length=120)
    widget_key = models.CharField(_("widget key"), max_length=40, unique=True, default=new_widget_key, editable=False)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_timezone])
    stale_after_seconds = models.PositiveIntegerField(
        _("grace period (seconds)"),
        default=STALE_AFTER_DEFAULT,
        validators=[MinValueValidator(STALE_AFTER_MIN), MaxValueValidator(STALE_AFTER_MAX)],
        help_text=_("How long an operator whose devices all vanished stays online."),
    )
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        blank=True,
        validators=[validate_origins],
        help_text=_("Websites allowed to open the live widget connection; empty = any."),
    )
    language = models.CharField(_("language"), max_length=5, choices=Language.choices, default=Language.EN)
    busy_after_seconds = models.PositiveIntegerField(
        _("busy message after (seconds)"),
        default=BUSY_AFTER_DEFAULT,
        validators=[MinValueValidator(BUSY_AFTER_MIN), MaxValueValidator(BUSY_AFTER_MAX)],
        help_text=_("How long a visitor waits for a reply before the automatic busy message."),
    )
    # Empty: the built-in text in the account's language.
    busy_message = models.TextField(_("busy message"), max_length=AUTO_MESSAGE_MAX, blank=True)
    offline_message = models.TextField(_("offline message"), max_length=AUTO_MESSAGE_MAX, blank=True)
    bot_mode = models.CharField(
        _("FAQ bot"),
        max_length=20,
        choices=BotMode.choices,
        default=BotMode.WHEN_UNAVAILABLE,
        help_text=_("When the FAQ bot answers visitors' questions."),
    )
    # Changes with every change of the account's FAQ entries: each process's
    # matcher index of the account is rebuilt when it sees another value.
    faq_version = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)

    class Meta:
        # The tables keep the names they had when these models lived in ``presence``.
        db_table = "presence_account"
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stale_after_seconds__gte=STALE_AFTER_MIN, stale_after_seconds__lte=STALE_AFTER_MAX),
                name="account_stale_after_range",
            ),
            models.CheckConstraint(
                condition=models.Q(busy_after_seconds__gte=BUSY_AFTER_MIN, busy_after_seconds__lte=BUSY_AFTER_MAX),
                name="account_busy_after_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OperatorManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("An operator needs an e-mail address")
        operator = self.model(email=self.normalize_email(email).lower(), **fields)
        operator.set_password(password)
        operator.save(using=self._db)
        return operator

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class Operator(AbstractBaseUser, PermissionsMixin):
    """A person answering the chat of one account; logs in by e-mail."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Admin")
        AGENT = "agent", _("Agent")

    email = models.EmailField(_("e-mail"), unique=True)
    # Null only for site staff who manage the installation through the admin.
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="operators", verbose_name=_("account")
    )
    display_name = models.CharField(_("display name"), max_length=80)
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.AGENT)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OFFLINE)
    status_changed_at = models.DateTimeField(_("status changed at"), default=dj_timezone.now)
    language = models.CharField(_("language"), max_length=5, choices=Account.Language.choices, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff"), default=False)
    date_joined = models.DateTimeField(default=dj_timezone.now)
    # Raised by the services whenever every earlier login must end (password
    # changed, deactivated): it is mixed into the session hash, so Django
    # refuses every session made before (see ``get_session_auth_hash``).
    credentials_version = models.PositiveIntegerField(_("credentials version"), default=0, editable=False)

    objects = OperatorManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        db_table = "presence_operator"
        verbose_name = _("operator")
        verbose_name_plural = _("operators")
        indexes = [models.Index(fields=["account", "status"], name="presence_op_account_a0d132_idx")]
        constraints = [
            # The owner rules are checked in accounts.services with clear errors;
            # this makes a second owner impossible whatever writes the row.
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(role="owner"),
                name="operator_one_owner_per_account",
                violation_error_message=_("An account has exactly one owner."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>"

    # django.contrib.auth.get_user compares a session's stored hash with these
    # on every request (and the sockets' auth middleware on connect): a session
    # made under an older credentials version no longer matches and is flushed.
    def get_session_auth_hash(self) -> str:
        return self._with_credentials_version(super().get_session_auth_hash())

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for fallback in super().get_session_auth_fallback_hash():
            yield self._with_credentials_version(fallback)

    def _with_credentials_version(self, password_hash: str) -> str:
        # Version 0 (never bumped) keeps Django's own hash: the sessions made
        # before the counter existed survive the upgrade. The HMAC under the
        # secret key is the input, so the result is as unforgeable as it.
        if not self.credentials_version:
            return password_hash
        return hashlib.sha256(f"{password_hash}:{self.credentials_version}".encode()).hexdigest()

    @property
    def is_account_admin(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    @property
    def initials(self) -> str:
        parts = [part for part in self.display_name.split() if part]
        letters = "".join(part[0] for part in parts[:2]) or self.email[:1]
        return letters.upper()

    @property
    def avatar_hue(self) -> int:
        # A stable colour per operator for the initials fallback.
        return int(hashlib.sha256(self.email.encode()).hexdigest()[:4], 16) % 360


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """One token per device: revoking one logs out that device only.

    Only a hash is stored, so a database leak reveals no usable token.
    """

    operator = models.ForeignKey(Operator, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    device = models.CharField(_("device"), max_length=80, blank=True)
    is_mobile = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "presence_apitoken"
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.operator_id}:{self.device or 'device'}"
