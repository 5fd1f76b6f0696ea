"""Dashboard forms: they translate browser input into service arguments."""

import io
import uuid

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext_lazy as _
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import Account, Operator, Status
from groups.models import Group
from presence.models import Source

AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MAX_PIXELS = 25_000_000
AVATAR_SIZE = 256
# Pillow format → file extension; anything else is refused.
AVATAR_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
ASSIGNABLE_ROLES = [(Operator.Role.AGENT, Operator.Role.AGENT.label), (Operator.Role.ADMIN, Operator.Role.ADMIN.label)]


def form_add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ``ValidationError`` next to the matching fields."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error.messages)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label=_("E-mail"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self) -> str:
        # Addresses are stored in lower case; people type them any way.
        return self.cleaned_data["username"].strip().lower()


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Status.choices)


class OperatorCreateForm(forms.Form):
    display_name = forms.CharField(label=_("Name"), max_length=80)
    email = forms.EmailField(label=_("E-mail"))
    password = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 8 characters. Tell it to your colleague; they can change it in their profile."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=ASSIGNABLE_ROLES, initial=Operator.Role.AGENT)
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"), queryset=Group.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = Group.objects.filter(account=account).order_by("name")


class OperatorEditForm(forms.Form):
    display_name = forms.CharField(label=_("Name"), max_length=80)
    role = forms.ChoiceField(label=_("Role"), choices=ASSIGNABLE_ROLES)
    is_active = forms.BooleanField(
        label=_("Active"), required=False, help_text=_("An inactive operator cannot log in and never counts as online.")
    )
    groups = forms.ModelMultipleChoiceField(
        label=_("Groups"), queryset=Group.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, operator: Operator, editor: Operator, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "display_name": operator.display_name,
                "role": operator.role,
                "is_active": operator.is_active,
                "groups": list(operator.chat_groups.all()),
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = Group.objects.filter(account_id=operator.account_id).order_by("name")
        # The owner's role is not for admins to change, and nobody demotes or
        # deactivates themselves by accident.
        if operator.role == Operator.Role.OWNER or operator.id == editor.id:
            del self.fields["role"]
            del self.fields["is_active"]


class HistoryFilterForm(forms.Form):
    operator = forms.ModelChoiceField(
        label=_("Operator"), queryset=Operator.objects.none(), required=False, empty_label=_("Everyone")
    )
    source = forms.ChoiceField(label=_("Source"), choices=[("", _("Any source")), *Source.choices], required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, account: Account, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = Operator.objects.filter(account=account).order_by("display_name")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data


class AllowedOriginsForm(forms.Form):
    allowed_origins = forms.CharField(
        label=_("Origins"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "https://www.example.com", "spellcheck": "false"}),
        help_text=_("One website per line, like https://www.example.com. Leave empty to allow any website."),
    )

    def clean_allowed_origins(self) -> list[str]:
        lines = (line.strip().rstrip("/") for line in self.cleaned_data["allowed_origins"].splitlines())
        return list(dict.fromkeys(line for line in lines if line))


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Name"), max_length=80)
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("Account default")), *Account.Language.choices]
    )
    avatar = forms.FileField(
        label=_("Avatar"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text=_("PNG, JPEG or WebP, at most 2 MB."),
    )
    remove_avatar = forms.BooleanField(label=_("Remove the avatar"), required=False)

    def __init__(self, *args, operator: Operator, **kwargs) -> None:
        kwargs.setdefault("initial", {"display_name": operator.display_name, "language": operator.language})
        super().__init__(*args, **kwargs)
        self.fields["avatar"].widget = forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        if not operator.avatar:
            del self.fields["remove_avatar"]

    def clean_avatar(self) -> ContentFile | None:
        upload = self.cleaned_data.get("avatar")
        if not upload:
            return None
        if upload.size > AVATAR_MAX_BYTES:
            raise ValidationError(_("The image is larger than 2 MB."), code="too_big")
        return avatar_normalise(upload)

    def service_fields(self) -> dict:
        """What ``operator_update`` should change."""
        fields = {"display_name": self.cleaned_data["display_name"], "language": self.cleaned_data["language"]}
        if self.cleaned_data.get("avatar"):
            fields["avatar"] = self.cleaned_data["avatar"]
        elif self.cleaned_data.get("remove_avatar"):
            fields["avatar"] = ""
        return fields


def avatar_normalise(upload) -> ContentFile:
    """Check that the upload really is a PNG, JPEG or WebP image and re-encode it
    small: the stored file never carries the uploader's bytes, name or metadata."""
    invalid = ValidationError(_("Upload a PNG, JPEG or WebP image."), code="invalid_image")
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            image_format = probe.format
            width, height = probe.size
            probe.verify()
        if image_format not in AVATAR_FORMATS:
            raise invalid
        if width * height > AVATAR_MAX_PIXELS:
            raise ValidationError(_("The image has too many pixels."), code="too_many_pixels")
        upload.seek(0)
        with Image.open(upload) as image:
            image = ImageOps.exif_transpose(image)
            image.thumbnail((AVATAR_SIZE, AVATAR_SIZE))
            if image_format == "JPEG" and image.mode not in ("RGB", "L"):
                image = image.convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format=image_format)
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise invalid from None
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.{AVATAR_FORMATS[image_format]}")
