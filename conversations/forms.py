"""The widget's old offline form (a JSON body, not an HTML form)."""

from django import forms

from conversations.inputs import page_url_clean
from conversations.models import BODY_MAX, NAME_MAX
from widget.forms import JsonCharField, JsonEmailField

EMAIL_MAX = 254
GROUP_MAX = 50


class OfflineForm(forms.Form):
    name = JsonCharField(max_length=NAME_MAX)
    email = JsonEmailField(max_length=EMAIL_MAX)
    # The old form allowed 5,000 characters; a conversation's messages hold 4,000.
    message = JsonCharField(max_length=BODY_MAX)
    group = JsonCharField(max_length=GROUP_MAX, required=False)
    page_url = forms.Field(required=False)

    def clean_page_url(self) -> str:
        # Context for the operator, not something the visitor controls on
        # purpose: an unusable value is dropped rather than refusing the message.
        return page_url_clean(self.cleaned_data.get("page_url"))
