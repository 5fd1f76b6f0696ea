"""Inbox forms: an operator's reply, an assignment, the list's filter.

The reply checks are the ones the widget and the REST API use
(``conversations.inputs``): one set of rules, one set of messages.
"""

import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import Account, Operator
from conversations import inputs

# The inbox's lists: three views of the open conversations, and the closed ones.
VIEW_WAITING, VIEW_MINE, VIEW_ALL, VIEW_CLOSED = "waiting", "mine", "all", "closed"
VIEWS = (VIEW_WAITING, VIEW_MINE, VIEW_ALL, VIEW_CLOSED)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class ReplyForm(forms.Form):
    body = forms.CharField(label=_("Reply"), strip=False, required=False)
    client_id = forms.CharField(strip=False, required=False)

    def clean(self) -> dict:
        data = super().clean()
        errors: dict[str, list[str]] = {}
        data["body"] = inputs.body_clean(data.get("body", ""), errors)
        data["client_id"] = inputs.client_id_clean(data.get("client_id", ""), errors)
        for field, messages in errors.items():
            self.add_error(field, messages)
        return data


class AssignForm(forms.Form):
    """An active operator of the account, or empty for "Unassigned"."""

    operator = forms.ModelChoiceField(
        label=_("Assigned to"), queryset=Operator.objects.none(), required=False, empty_label=_("Unassigned")
    )

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = Operator.objects.filter(account=account, is_active=True)


def cursor_text(*, last_message_at: datetime.datetime, conversation_id: int) -> str:
    """Where a list page ends: the last row's activity (whole microseconds,
    exact, unlike a float timestamp) and id."""
    return f"{(last_message_at - _EPOCH) // datetime.timedelta(microseconds=1)}.{conversation_id}"


class ListForm(forms.Form):
    view = forms.ChoiceField(choices=[(view, view) for view in VIEWS], required=False)
    before = forms.RegexField(regex=r"^[0-9]{1,20}\.[0-9]{1,12}$", required=False)

    def clean_view(self) -> str:
        return self.cleaned_data["view"] or VIEW_ALL

    def clean_before(self) -> tuple[datetime.datetime, int] | None:
        value = self.cleaned_data["before"]
        if not value:
            return None
        micros, conversation_id = value.split(".")
        try:
            moment = _EPOCH + datetime.timedelta(microseconds=int(micros))
        except OverflowError as error:
            raise ValidationError(_("Enter a valid value."), code="invalid") from error
        return moment, int(conversation_id)
