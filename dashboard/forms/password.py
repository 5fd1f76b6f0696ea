"""Password reset by e-mail: Django's forms, in the dashboard's words, saving through the service."""

from django import forms
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts.services import operator_set_password


class OperatorPasswordResetForm(PasswordResetForm):
    """Sends the link only to an active operator with that address (Django's
    ``get_users``); the page says the same whether one exists or not."""

    email = forms.EmailField(
        label=_("E-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs) -> None:
        # The e-mail speaks the operator's language (else the account's), not the asker's browser's.
        operator = context["user"]
        language = operator.language or (operator.account.language if operator.account_id else "")
        with translation.override(language or translation.get_language()):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)


class OperatorSetPasswordForm(SetPasswordForm):
    def save(self, commit: bool = True):
        # The service checks the password and ends every other login of the operator:
        # whoever knew the old password is out.
        return operator_set_password(operator=self.user, password=self.cleaned_data["new_password1"])
