"""Validation of a visitor's offline message (a JSON body, not an HTML form)."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

NAME_MAX = 100
EMAIL_MAX = 254
MESSAGE_MAX = 5000
GROUP_MAX = 50
PAGE_URL_MAX = 500


class _JsonStringMixin:
    """JSON may carry numbers, lists or objects where text belongs; refuse
    them instead of storing their ``str()``."""

    def to_python(self, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValidationError(_("Enter text."), code="invalid_type")
        return super().to_python(value)


class JsonCharField(_JsonStringMixin, forms.CharField):
    pass


class JsonEmailField(_JsonStringMixin, forms.EmailField):
    pass


class OfflineMessageForm(forms.Form):
    name = JsonCharField(max_length=NAME_MAX)
    email = JsonEmailField(max_length=EMAIL_MAX)
    message = JsonCharField(max_length=MESSAGE_MAX)
    group = JsonCharField(max_length=GROUP_MAX, required=False)
    page_url = forms.Field(required=False)

    def clean_page_url(self) -> str:
        # Context for the operator, not something the visitor controls on
        # purpose: an unusable value is dropped rather than refusing the message.
        value = self.cleaned_data.get("page_url") or ""
        if not isinstance(value, str) or len(value) > PAGE_URL_MAX:
            return ""
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            return ""
        return value


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}
