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
from conversations.selectors import INBOX_VIEWS, VIEW_ALL, inbox_cursor_parse


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


class ListForm(forms.Form):
    view = forms.ChoiceField(choices=[(view, view) for view in INBOX_VIEWS], required=False)
    # Its format is the selector's (``inbox_cursor_parse``), checked in one place.
    before = forms.CharField(required=False, strip=False)

    def clean_view(self) -> str:
        return self.cleaned_data["view"] or VIEW_ALL

    def clean_before(self) -> tuple[datetime.datetime, int] | None:
        value = self.cleaned_data["before"]
        if not value:
            return None
        try:
            return inbox_cursor_parse(value)
        except ValueError as error:
            raise ValidationError(_("Enter a valid value."), code="invalid") from error
