"""Shapes of the REST API's operators, status, chat box, account and audit trail.

Serializers check types and sizes only; the rules (unique e-mail, valid time
zone, who may become what) stay in the services, whose ``ValidationError``
the views turn into field errors with the same keys.
"""

from django.contrib.auth import authenticate
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import (
    AUTO_MESSAGE_MAX,
    BUSY_AFTER_MAX,
    BUSY_AFTER_MIN,
    MAX_ALLOWED_ORIGINS,
    Account,
    Operator,
    Status,
)
from presence.models import Source, StatusEvent

# Ids are bigints in the database; a larger number can only be a mistake.
MAX_ID = 2**63 - 1

# --- strict JSON types ------------------------------------------------------------------
# DRF turns 12 into "12", "yes" into True and "30" into 30. A JSON API says which
# type each field has; a value of another type is the caller's mistake, named.


class MaxLengthAsSent:
    """The documented maxLength holds for the text as sent. DRF checks it
    after trimming, so a longer text with white space around it (or only
    white space, on a field that may be blank) would pass, though the
    schema says it is refused."""

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class StrictCharField(MaxLengthAsSent, serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(MaxLengthAsSent, serializers.EmailField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class DigitsField(serializers.IntegerField):
    """A whole number written in ASCII digits only (DRF's would take " 5" and "5.0"):
    a query parameter's number."""

    def to_internal_value(self, data):
        if not (isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 19):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(StrictIntegerField):
    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


class BoundedListField(serializers.ListField):
    """A list whose length is checked before its items: DRF's ``ListField``
    validates every item first, so 100,000 bad ids made 100,000 messages."""

    def to_internal_value(self, data):
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- log in ---------------------------------------------------------------------


class TokenRequestSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    password = StrictCharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})
    device = StrictCharField(
        max_length=80, required=False, allow_blank=True, default="", help_text=_("A label for this device.")
    )
    mobile = StrictBooleanField(
        required=False,
        default=False,
        help_text=_("Status changes with this token are recorded as from the mobile app."),
    )

    default_error_messages = {"invalid_login": _("Unable to log in with the e-mail and password given.")}

    def validate(self, attrs: dict) -> dict:
        operator = authenticate(
            self.context.get("request"), username=attrs["email"].strip().lower(), password=attrs["password"]
        )
        # One message for every failure: the answer must not tell whether the e-mail exists.
        if operator is None or operator.account_id is None:
            raise serializers.ValidationError(self.error_messages["invalid_login"], code="invalid_login")
        attrs["operator"] = operator
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text=_("Send it as the header `Authorization: Token <token>`."))


# --- operators --------------------------------------------------------------------


class OperatorSerializer(serializers.ModelSerializer):
    # Declared: the derived field would document "" (the account's language) as impossible.
    language = serializers.ChoiceField(
        choices=Account.Language.choices,
        allow_blank=True,
        read_only=True,
        help_text=_("Empty: the account's language."),
    )
    avatar_url = serializers.SerializerMethodField()
    groups = serializers.SerializerMethodField(help_text=_("Keys of the groups the operator is a member of."))

    class Meta:
        model = Operator
        fields = [
            "id",
            "email",
            "display_name",
            "role",
            "status",
            "status_changed_at",
            "language",
            "is_active",
            "initials",
            "avatar_url",
            "groups",
        ]
        read_only_fields = fields

    # A path on this server (MEDIA_URL), not an absolute URL.
    @extend_schema_field({"type": "string", "format": "uri-reference", "nullable": True})
    def get_avatar_url(self, operator: Operator) -> str | None:
        return operator.avatar.url if operator.avatar else None

    def get_groups(self, operator: Operator) -> list[str]:
        return sorted(group.key for group in operator.chat_groups.all())


class MeAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["id", "name"]
        read_only_fields = fields


class MeSerializer(OperatorSerializer):
    account = MeAccountSerializer(read_only=True)

    class Meta(OperatorSerializer.Meta):
        fields = [*OperatorSerializer.Meta.fields, "account"]
        read_only_fields = fields


# The roles a new operator may get: never owner (an account has exactly one).
NEW_OPERATOR_ROLES = [
    (Operator.Role.AGENT.value, Operator.Role.AGENT.label),
    (Operator.Role.ADMIN.value, Operator.Role.ADMIN.label),
]


class OperatorCreateSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    display_name = StrictCharField(max_length=80)
    password = StrictCharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        write_only=True,
        help_text=_("Optional: without one the operator cannot log in until a password is set."),
    )
    role = serializers.ChoiceField(choices=NEW_OPERATOR_ROLES, required=False, default=Operator.Role.AGENT)


class OperatorUpdateSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254, required=False)
    display_name = StrictCharField(max_length=80, required=False)
    role = serializers.ChoiceField(choices=Operator.Role.choices, required=False)
    language = serializers.ChoiceField(choices=Account.Language.choices, allow_blank=True, required=False)
    is_active = StrictBooleanField(required=False)


# --- status and presence ---------------------------------------------------------------


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    device = StrictCharField(
        max_length=80,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text=_("A label of the client; presence is kept per token (or session) whatever it says."),
    )


class StatusStateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    status_changed_at = serializers.DateTimeField()


class HeartbeatSerializer(serializers.Serializer):
    device = StrictCharField(max_length=80, required=False, allow_blank=True)


class HeartbeatResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    next_heartbeat_seconds = serializers.IntegerField(help_text=_("Send the next heartbeat within this many seconds."))


# --- chat box ---------------------------------------------------------------------------

REASONS = ["operators_online", "no_operator_online", "closed"]


class ChatBoxGroupSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    reason = serializers.ChoiceField(choices=REASONS)
    next_change_at = serializers.DateTimeField(allow_null=True)


class ChatBoxSerializer(ChatBoxGroupSerializer):
    groups = serializers.DictField(child=ChatBoxGroupSerializer(), help_text=_("The chat box of each group, by key."))
    version = serializers.IntegerField(help_text=_("Grows with every change of any box of the account."))


# --- account --------------------------------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=120)
    timezone = StrictCharField(max_length=64, help_text=_("An IANA time zone, e.g. Europe/Prague."))
    stale_after_seconds = StrictIntegerField(min_value=30, max_value=3600)
    allowed_origins = BoundedListField(
        child=StrictCharField(max_length=200),
        max_length=MAX_ALLOWED_ORIGINS,
        help_text=_("Websites allowed to open the live widget connection; empty = any."),
    )
    language = serializers.ChoiceField(choices=Account.Language.choices)
    busy_after_seconds = StrictIntegerField(
        min_value=BUSY_AFTER_MIN,
        max_value=BUSY_AFTER_MAX,
        help_text=_("How long a visitor waits for a reply before the automatic busy message."),
    )
    # The model's max_length on a TextField is no validator: it is checked here.
    # Stored as sent (conversations.texts trims it), so the limit is the one documented.
    busy_message = StrictCharField(
        max_length=AUTO_MESSAGE_MAX,
        allow_blank=True,
        trim_whitespace=False,
        help_text=_("The busy message's text; empty: the built-in one, in the account's language."),
    )
    offline_message = StrictCharField(
        max_length=AUTO_MESSAGE_MAX,
        allow_blank=True,
        trim_whitespace=False,
        help_text=_("The offline message's text; empty: the built-in one, in the account's language."),
    )

    class Meta:
        model = Account
        fields = [
            "id",
            "widget_key",
            "name",
            "timezone",
            "stale_after_seconds",
            "allowed_origins",
            "language",
            "busy_after_seconds",
            "busy_message",
            "offline_message",
            "bot_mode",
        ]
        read_only_fields = ["id", "widget_key"]


# --- audit trail --------------------------------------------------------------------------


class StatusEventSerializer(serializers.ModelSerializer):
    operator_id = serializers.IntegerField(read_only=True)
    source = serializers.ChoiceField(choices=Source.choices, read_only=True)

    class Meta:
        model = StatusEvent
        fields = ["id", "operator_id", "old", "new", "source", "device", "at"]
        read_only_fields = fields


class StatusEventQuerySerializer(serializers.Serializer):
    operator = DigitsField(min_value=1, max_value=MAX_ID, required=False, help_text=_("Only this operator's changes."))
    since = serializers.DateTimeField(required=False, help_text=_("Only changes at or after this moment (ISO 8601)."))
