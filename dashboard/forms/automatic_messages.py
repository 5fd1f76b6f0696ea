"""The account's automatic messages (rules 7–8): the busy message's delay and
the two texts.

The limits are the model's constants (the API's serializer uses the same);
``accounts.services.account_update`` validates the account again and its
errors are shown at these fields.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import AUTO_MESSAGE_MAX, BUSY_AFTER_MAX, BUSY_AFTER_MIN, Account
from conversations.texts import built_in_texts


class AutomaticMessagesForm(forms.Form):
    busy_after_seconds = forms.IntegerField(
        label=gettext_lazy("Busy message after (seconds)"),
        widget=forms.NumberInput(
            attrs={"min": BUSY_AFTER_MIN, "max": BUSY_AFTER_MAX, "step": 1, "class": "input-short"}
        ),
    )
    busy_message = forms.CharField(
        label=gettext_lazy("Busy message"),
        max_length=AUTO_MESSAGE_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "prose"}),
        help_text=gettext_lazy(
            "Sent once when the chat is online and nobody has replied in time. A visitor who gave no "
            "e-mail address is also asked for one."
        ),
    )
    offline_message = forms.CharField(
        label=gettext_lazy("Offline message"),
        max_length=AUTO_MESSAGE_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "prose"}),
        help_text=gettext_lazy(
            "Sent when a visitor writes while the chat is offline, with the time you are back when the opening "
            "hours know it, and a request for an e-mail address when the visitor gave none."
        ),
    )

    def __init__(self, *args, account: Account, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "busy_after_seconds": account.busy_after_seconds,
                "busy_message": account.busy_message,
                "offline_message": account.offline_message,
            },
        )
        super().__init__(*args, **kwargs)
        seconds = self.fields["busy_after_seconds"]
        # One clear sentence for every way to miss the range: empty, not a whole number, too small, too big.
        self.range_error = _("Enter a whole number of seconds from %(min)d to %(max)d.") % {
            "min": BUSY_AFTER_MIN,
            "max": BUSY_AFTER_MAX,
        }
        seconds.error_messages.update(required=self.range_error, invalid=self.range_error)
        seconds.help_text = _("How long a visitor waits for an operator's reply before the busy message.")
        # An empty text stands for the built-in one, in the account's language: shown as what it stands for.
        for name, text in built_in_texts(account=account).items():
            self.fields[name].widget.attrs["placeholder"] = text

    def clean_busy_after_seconds(self) -> int:
        seconds = self.cleaned_data["busy_after_seconds"]
        if not BUSY_AFTER_MIN <= seconds <= BUSY_AFTER_MAX:
            raise ValidationError(self.range_error, code="range")
        return seconds
