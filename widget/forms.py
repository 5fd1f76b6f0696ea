"""Fields for JSON bodies of the public endpoints (not HTML forms)."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


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


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {field: [str(message) for message in messages] for field, messages in form.errors.items()}
