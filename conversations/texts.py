"""The automatic messages' words (rules 7–8), in the account's language."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import formats, translation
from django.utils.translation import gettext as _

from accounts.models import Account


def _with_language(account: Account):
    return translation.override(account.language or "en")


def _offline_built_in() -> str:
    return _("We're offline right now.")


def _busy_built_in() -> str:
    return _("Sorry, we're busy at the moment. We'll be with you shortly.")


def built_in_texts(*, account: Account) -> dict[str, str]:
    """What an empty ``busy_message`` / ``offline_message`` stands for, in
    the account's language (the settings page shows it as the placeholder)."""
    with _with_language(account):
        return {"busy_message": _busy_built_in(), "offline_message": _offline_built_in()}


def offline_text(*, account: Account, back_at: datetime | None, ask_email: bool) -> str:
    """The offline message: the account's own text or the built-in one, the
    "back at" time when a schedule knows it, and the request for an e-mail
    when the visitor gave none."""
    with _with_language(account):
        parts = [account.offline_message.strip() or _offline_built_in()]
        if back_at is not None:
            local = back_at.astimezone(ZoneInfo(account.timezone))
            when = formats.date_format(local, "D j. n. H:i" if account.language == "cs" else "D j M, H:i")
            parts.append(_("We're back at %(when)s (%(zone)s).") % {"when": when, "zone": account.timezone})
        if ask_email:
            parts.append(_("Leave us your e-mail address and we'll reply there."))
        elif not account.offline_message.strip():
            parts.append(_("We'll reply as soon as we're back."))
        return " ".join(parts)


def busy_text(*, account: Account, ask_email: bool) -> str:
    with _with_language(account):
        parts = [account.busy_message.strip() or _busy_built_in()]
        if ask_email:
            parts.append(_("If you can't wait, leave us your e-mail address and we'll reply there."))
        return " ".join(parts)
