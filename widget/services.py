"""Writes for the public widget: visitors' offline messages."""

import logging

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import Account, Operator
from groups.models import Group
from widget.models import OfflineMessage

logger = logging.getLogger(__name__)

SUBJECT_NAME_MAX = 60


def offline_message_create(
    *,
    account_id: int,
    name: str,
    email: str,
    message: str,
    group_key: str | None = None,
    page_url: str = "",
) -> OfflineMessage:
    """Store a visitor's message, then notify the account's admins by e-mail.

    The row is committed before any e-mail is attempted: a failing mail server
    must never cost a visitor's message. A group key that does not exist (any
    more) files the message under the account rather than refusing it.
    """
    with transaction.atomic():
        group = Group.objects.filter(account_id=account_id, key=group_key).first() if group_key else None
        offline_message = OfflineMessage.objects.create(
            account_id=account_id, group=group, name=name, email=email, message=message, page_url=page_url
        )
        transaction.on_commit(lambda: offline_message_notify(offline_message=offline_message))
    return offline_message


def offline_message_recipients(*, account_id: int) -> list[str]:
    return list(
        Operator.objects.filter(
            account_id=account_id, is_active=True, role__in=[Operator.Role.OWNER, Operator.Role.ADMIN]
        )
        .order_by("id")
        .values_list("email", flat=True)
    )


def offline_message_notify(*, offline_message: OfflineMessage) -> bool:
    """E-mail the message to the account's owner and admins; True if sent.

    Failures are logged, never raised: the message is already stored and
    listed in the dashboard's inbox.
    """
    try:
        recipients = offline_message_recipients(account_id=offline_message.account_id)
        if not recipients:
            logger.warning("offline message %s: account has no admin to notify", offline_message.id)
            return False
        language = Account.objects.filter(id=offline_message.account_id).values_list("language", flat=True).first()
        with translation.override(language or "en"):
            mail = EmailMessage(
                subject=_offline_message_subject(offline_message),
                body=_offline_message_body(offline_message),
                to=recipients,
                # Answering the e-mail answers the visitor.
                reply_to=[offline_message.email],
            )
        mail.send()
    except Exception:
        logger.exception("offline message %s: notification e-mail failed", offline_message.id)
        return False
    return True


def _offline_message_subject(offline_message: OfflineMessage) -> str:
    # Headers cannot hold line breaks; a visitor's name may.
    name = " ".join(offline_message.name.split())
    if len(name) > SUBJECT_NAME_MAX:
        name = name[: SUBJECT_NAME_MAX - 1] + "…"
    return _("New message from %(name)s") % {"name": name}


def _offline_message_body(offline_message: OfflineMessage) -> str:
    lines = [
        _("%(name)s <%(email)s> left a message on your website.")
        % {"name": offline_message.name, "email": offline_message.email},
        "",
    ]
    if offline_message.group is not None:
        lines.append(_("Group: %(group)s") % {"group": offline_message.group.name})
    if offline_message.page_url:
        lines.append(_("Page: %(url)s") % {"url": offline_message.page_url})
    if len(lines) > 2:
        lines.append("")
    lines += [offline_message.message, "", _("Reply to this e-mail to answer the visitor.")]
    return "\n".join(lines)
