"""Checks of what visitors and operators send, shared by the widget endpoints
and the REST API: one set of rules, one set of messages."""

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils.translation import gettext as _

from accounts.zones import is_known_zone
from conversations.models import BODY_MAX, CLIENT_ID_MAX, NAME_MAX, PAGE_URL_MAX

EMAIL_MAX = 254
GROUP_KEY_MAX = 50
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]+")


def lines_normalised(text: str) -> str:
    """Line breaks as ``\\n``, the ends stripped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def control_characters_in(text: str, *, allowed: str = "\n\t") -> bool:
    """Control characters (or lone surrogates) other than ``allowed``."""
    return any(unicodedata.category(char) in ("Cc", "Cs") and char not in allowed for char in text)


def _text(value: object, *, field: str, errors: dict[str, list[str]]) -> str | None:
    if not isinstance(value, str):
        errors[field] = [_("Enter text.")]
        return None
    return value


def body_clean(value: object, errors: dict[str, list[str]]) -> str:
    """A message body: text, not blank, at most BODY_MAX characters, no control
    characters but line breaks and tabs (line breaks normalised to ``\\n``)."""
    text = _text(value, field="body", errors=errors)
    if text is None:
        return ""
    text = lines_normalised(text)
    if not text:
        errors["body"] = [_("Write a message.")]
    elif len(text) > BODY_MAX:
        errors["body"] = [_("At most %(max)d characters (this has %(count)d).") % {"max": BODY_MAX, "count": len(text)}]
    elif control_characters_in(text):
        errors["body"] = [_("The message contains control characters.")]
    return text


def client_id_clean(value: object, errors: dict[str, list[str]]) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= CLIENT_ID_MAX or not _CLIENT_ID.fullmatch(value):
        errors["client_id"] = [
            _("A client_id of 1 to %(max)d letters, digits and . _ : - is required.") % {"max": CLIENT_ID_MAX}
        ]
        return ""
    if value.startswith("auto:"):
        errors["client_id"] = [_("client_id may not start with auto:.")]
    return value


def name_clean(value: object, errors: dict[str, list[str]]) -> str:
    if value is None:
        return ""
    text = _text(value, field="name", errors=errors)
    if text is None:
        return ""
    text = " ".join(text.split())
    if len(text) > NAME_MAX:
        errors["name"] = [_("At most %(max)d characters.") % {"max": NAME_MAX}]
    elif control_characters_in(text, allowed=""):
        errors["name"] = [_("The name contains control characters.")]
    return text


def email_clean(value: object, errors: dict[str, list[str]]) -> str:
    if value is None or value == "":
        return ""
    text = _text(value, field="email", errors=errors)
    if text is None:
        return ""
    text = text.strip()
    try:
        if len(text) > EMAIL_MAX:
            raise ValidationError("too long")
        validate_email(text)
    except ValidationError:
        errors["email"] = [_("Enter a valid e-mail address.")]
    return text


def group_clean(value: object, errors: dict[str, list[str]]) -> str | None:
    if value is None or value == "":
        return None
    text = _text(value, field="group", errors=errors)
    if text is not None and len(text) > GROUP_KEY_MAX:
        errors["group"] = [_("Unknown group.")]
    return text


def page_url_clean(value: object) -> str:
    """Context for the operator the visitor does not type: an unusable value is dropped, never refused."""
    if not isinstance(value, str) or len(value) > PAGE_URL_MAX:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        return ""
    return value


def time_zone_clean(value: object) -> str:
    """The IANA zone the visitor's browser reports, for their local time in
    the inbox: context like the page, so an unknown one is dropped, never refused."""
    if not isinstance(value, str) or not is_known_zone(value):
        return ""
    return value
