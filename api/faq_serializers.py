"""Shapes of FAQ entries and matches in the REST API. Types and sizes are
checked here; what the text may contain (no HTML, not blank, a language of
the widget, a group of the account) by ``conversations.faq.services``, the
one set of rules the dashboard and the Django admin use too."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from api.serializers import BoundedListField, StrictBooleanField, StrictCharField
from conversations.models import BODY_MAX, FAQ_ANSWER_MAX, FAQ_PHRASINGS_MAX, FAQ_QUESTION_MAX, FaqEntry


class FaqEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    question = StrictCharField(max_length=FAQ_QUESTION_MAX, help_text=_("The question as the FAQ asks it."))
    phrasings = BoundedListField(
        child=StrictCharField(max_length=FAQ_QUESTION_MAX),
        max_length=FAQ_PHRASINGS_MAX,
        required=False,
        help_text=_("Other ways visitors ask it."),
    )
    answer = StrictCharField(
        max_length=FAQ_ANSWER_MAX,
        trim_whitespace=False,
        help_text=_("Plain text, no HTML; web addresses become links in the widget."),
    )
    language = serializers.ChoiceField(choices=FaqEntry.Language.choices)
    group = StrictCharField(
        max_length=50,
        allow_null=True,
        required=False,
        help_text=_("A group's key: asked only in that group's conversations. Null: in every conversation."),
    )
    enabled = StrictBooleanField(required=False, help_text=_("A disabled entry is neither answered nor suggested."))
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, entry: FaqEntry) -> dict:
        return {
            "id": entry.id,
            "question": entry.question,
            "phrasings": list(entry.phrasings),
            "answer": entry.answer,
            "language": entry.language,
            "group": entry.group.key if entry.group_id else None,
            "enabled": entry.enabled,
            "created_at": serializers.DateTimeField().to_representation(entry.created_at),
            "updated_at": serializers.DateTimeField().to_representation(entry.updated_at),
        }


class FaqMatchRequestSerializer(serializers.Serializer):
    question = StrictCharField(max_length=BODY_MAX, help_text=_("A visitor's question, as they wrote it."))
    language = serializers.ChoiceField(
        choices=FaqEntry.Language.choices, required=False, help_text=_("Only entries in this language.")
    )
    group = StrictCharField(
        max_length=50,
        required=False,
        allow_null=True,
        help_text=_("The conversation's group key: its entries and those of no group. Absent: those of no group."),
    )


class FaqMatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    question = serializers.CharField()
    answer = serializers.CharField()
    score = serializers.FloatField(help_text=_("0 to 1; the bot answers on its own from the account's threshold up."))


class FaqMatchResponseSerializer(serializers.Serializer):
    match = FaqMatchSerializer(allow_null=True, help_text=_("Null: no entry answers it with confidence."))
