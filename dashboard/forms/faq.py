"""Forms of the FAQ pages. They only gather the fields; the FAQ services
check them (the same rules as the API and the Django admin)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, BotMode
from conversations.models import BODY_MAX, FAQ_ANSWER_MAX, FAQ_QUESTION_MAX, FaqEntry
from groups.models import Group


class FaqEntryForm(forms.Form):
    question = forms.CharField(label=_("Question"), max_length=FAQ_QUESTION_MAX)
    phrasings = forms.CharField(
        label=_("Other phrasings"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One a line: other ways visitors ask it. The more, the better the bot recognises it."),
    )
    answer = forms.CharField(
        label=_("Answer"),
        max_length=FAQ_ANSWER_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Plain text. Web addresses (https://…) become links."),
    )
    language = forms.ChoiceField(label=_("Language"), choices=FaqEntry.Language.choices)
    group = forms.ModelChoiceField(
        label=_("Group"),
        queryset=Group.objects.none(),
        required=False,
        empty_label=_("Every conversation"),
        help_text=_("A group's entry is answered only in that group's conversations."),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def __init__(self, *args, account: Account, entry: FaqEntry | None = None, **kwargs) -> None:
        if entry is not None:
            kwargs.setdefault(
                "initial",
                {
                    "question": entry.question,
                    "phrasings": "\n".join(entry.phrasings),
                    "answer": entry.answer,
                    "language": entry.language,
                    "group": entry.group_id,
                    "enabled": entry.enabled,
                },
            )
        else:
            kwargs.setdefault("initial", {"language": account.language, "enabled": True})
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = Group.objects.filter(account=account).order_by("name")

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "question": data["question"],
            "phrasings": [line.strip() for line in data["phrasings"].splitlines() if line.strip()],
            "answer": data["answer"],
            "language": data["language"],
            "group_id": data["group"].id if data["group"] else None,
            "enabled": data["enabled"],
        }


class BotModeForm(forms.Form):
    bot_mode = forms.ChoiceField(label=_("The bot answers"), choices=BotMode.choices, widget=forms.RadioSelect)


class TryForm(forms.Form):
    q = forms.CharField(label=_("A visitor asks"), max_length=BODY_MAX)
