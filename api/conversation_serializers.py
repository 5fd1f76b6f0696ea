"""Shapes of conversations and messages in the REST API.

The answers are ``conversations.payloads`` as they are (every transport sends
the same JSON, built there only); the serializers for them here only DOCUMENT
that shape in the OpenAPI schema, and a test holds the two together. What a
client sends is checked by ``conversations.inputs``, the widget's rules and
messages; the request serializers declare its fields for the schema and hand
the checking to those functions.
"""

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import MAX_ID, DigitsField, IdField
from conversations import inputs
from conversations.models import CLIENT_ID_MAX, Conversation, Message

# --- answers (documentation of conversations.payloads) ------------------------------------


# A path on this server (MEDIA_URL), not an absolute URL.
@extend_schema_field({"type": "string", "format": "uri-reference", "nullable": True})
class PathField(serializers.CharField):
    pass


class OperatorBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    avatar_url = PathField(allow_null=True)


class VisitorBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text=_("Empty until the visitor gives one."))
    email = serializers.CharField(help_text=_("Empty until the visitor gives one."))


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=Conversation.Status.choices, help_text=_("A visitor who writes reopens a closed conversation.")
    )
    group = serializers.CharField(allow_null=True, help_text=_("The key of its group; null: the whole account's."))
    visitor = VisitorBriefSerializer()
    assignee = OperatorBriefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField()
    waiting_since = serializers.DateTimeField(
        allow_null=True, help_text=_("When the oldest visitor message no operator has answered yet was sent.")
    )


class FaqBriefSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField(allow_null=True, help_text=_("The FAQ entry answered; null once deleted."))
    feedback = serializers.ChoiceField(
        choices=["", "helpful", "talk_to_person"], help_text=_("The visitor's choice; empty until they make one.")
    )


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    seq = serializers.IntegerField(
        help_text=_("Rises by one per message of the conversation: resynchronise with `?after=SEQ`.")
    )
    author = serializers.ChoiceField(choices=Message.Author.choices)
    operator = OperatorBriefSerializer(allow_null=True, help_text=_("The operator who wrote it, if one did."))
    kind = serializers.ChoiceField(choices=Message.Kind.choices)
    body = serializers.CharField()
    client_id = serializers.CharField(help_text=_("The sender's id of the message (`auto:…` for automatic ones)."))
    created_at = serializers.DateTimeField()
    asks_email = serializers.BooleanField(help_text=_("An automatic message that asks the visitor for an e-mail."))
    faq = FaqBriefSerializer(required=False, help_text=_("On a bot answer (kind `faq`) only."))


# One conversation with its messages. A raw schema rather than a serializer:
# a second component with the conversation's "status" would give its choices
# two names (drf-spectacular warns, and the schema test fails on warnings).
CONVERSATION_DETAIL = {
    "allOf": [
        {"$ref": "#/components/schemas/Conversation"},
        {
            "type": "object",
            "properties": {
                "messages": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/Message"},
                    "description": "Oldest first, by `seq`.",
                }
            },
            "required": ["messages"],
        },
    ]
}


# --- requests -----------------------------------------------------------------------------------


# Fields declared for the schema, checked by ``conversations.inputs``.
# (No docstring: the OpenAPI descriptions would inherit it.)
class InputsSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # DRF's own "invalid data" error
        errors: dict[str, list[str]] = {}
        cleaned = self.inputs_clean(data, errors)
        if errors:
            raise serializers.ValidationError(errors)
        return cleaned

    def inputs_clean(self, data: Mapping, errors: dict[str, list[str]]) -> dict:
        raise NotImplementedError


class ReplySerializer(InputsSerializer):
    # No maxLength in the schema: the limit holds after surrounding white space
    # is trimmed, which a JSON schema cannot say.
    body = serializers.CharField(
        min_length=1,
        help_text=_("The message: at most 4000 characters once surrounding white space is trimmed."),
    )
    client_id = serializers.RegexField(
        r"^[A-Za-z0-9._:-]+$",
        min_length=1,
        max_length=CLIENT_ID_MAX,
        help_text=_(
            "The client's id of this message, unique in the conversation: sending it again answers the message "
            "stored the first time (200) instead of making a second one. Not starting with `auto:`."
        ),
    )

    def inputs_clean(self, data: Mapping, errors: dict[str, list[str]]) -> dict:
        return {
            "body": inputs.body_clean(data.get("body"), errors),
            "client_id": inputs.client_id_clean(data.get("client_id"), errors),
        }


class AssignSerializer(serializers.Serializer):
    operator = IdField(allow_null=True, help_text=_("An active operator of the account; null: nobody."))


# --- queries ------------------------------------------------------------------------------------

ASSIGNEE_PATTERN = r"^(me|none|[1-9][0-9]{0,18})$"


class ConversationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    assignee = serializers.RegexField(
        ASSIGNEE_PATTERN,
        required=False,
        trim_whitespace=False,
        help_text=_("`me`, `none` (unassigned) or an operator's id."),
        error_messages={"invalid": _("`me`, `none` or an operator's id.")},
    )

    def validate_assignee(self, value: str) -> str | int:
        if value in ("me", "none"):
            return value
        if int(value) > MAX_ID:
            raise serializers.ValidationError(self.fields["assignee"].error_messages["invalid"])
        return int(value)


class ConversationQuerySerializer(serializers.Serializer):
    # Seqs are PositiveIntegerFields: at most 2**31 - 1 on every database.
    after = DigitsField(
        min_value=0,
        max_value=2**31 - 1,
        required=False,
        help_text=_("Only the messages after this `seq` (a client's resynchronisation)."),
    )
