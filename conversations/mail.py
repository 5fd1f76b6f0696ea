"""E-mail to visitors: operators' replies a visitor did not see live.

A reply sets the conversation's e-mail timer (``services``); when it falls due
and the visitor has an address but no live widget, every reply since the last
e-mail goes out in one message — at most one per conversation per
``EMAIL_EVERY``.
"""

import logging
from datetime import datetime, timedelta

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Operator
from conversations.models import Conversation, Message
from presence.store import StoreUnavailable, get_store

logger = logging.getLogger(__name__)

# How long a reply waits for the visitor's live widget before it is e-mailed.
EMAIL_DELAY = timedelta(seconds=60)
EMAIL_EVERY = timedelta(minutes=5)


def conversation_replies_email(*, conversation_id: int, now: datetime | None = None) -> bool:
    """E-mail the replies since the last e-mail; True if one was sent. A
    visitor whose widget is live saw them: they are marked done unsent."""
    now = now or timezone.now()
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("account", "visitor")
            .filter(id=conversation_id)
            .first()
        )
        if conversation is None or not conversation.visitor.email:
            return False
        replies = list(
            Message.objects.filter(
                conversation=conversation, seq__gt=conversation.emailed_seq, author=Message.Author.OPERATOR
            )
            .select_related("operator")
            .order_by("seq")
        )
        if not replies:
            return False
        conversation.emailed_seq = replies[-1].seq
        try:
            live = get_store().visitor_live(digest=conversation.visitor.token_hash, now=now.timestamp())
        except StoreUnavailable:
            live = False  # better an e-mail too many than a reply never seen
        if live:
            conversation.save(update_fields=["emailed_seq"])
            return False
        conversation.emailed_at = now
        conversation.save(update_fields=["emailed_seq", "emailed_at"])
        mail = _replies_mail(conversation, replies)
        # Sent after commit: a failing mail server costs nothing stored.
        transaction.on_commit(lambda: _send(mail, conversation_id=conversation.id))
    return True


def _replies_mail(conversation: Conversation, replies: list[Message]) -> EmailMessage:
    account = conversation.account
    with translation.override(account.language or "en"):
        lines = [_("You have a reply from %(site)s:") % {"site": account.name}, ""]
        for reply in replies:
            name = reply.operator.display_name if reply.operator else account.name
            lines += [f"{name}:", reply.body, ""]
        if conversation.page_url:
            lines.append(_("Continue the conversation on %(url)s") % {"url": conversation.page_url})
        return EmailMessage(
            subject=_("Reply from %(site)s") % {"site": " ".join(account.name.split())},
            body="\n".join(lines),
            to=[conversation.visitor.email],
        )


def _send(mail: EmailMessage, *, conversation_id: int) -> None:
    try:
        mail.send()
    except Exception:
        logger.exception("conversation %s: reply e-mail failed", conversation_id)


# --- to the account's admins: a visitor wrote while nobody was there -----------------

SUBJECT_NAME_MAX = 60


def admins_notify(*, message_id: int) -> bool:
    """E-mail a visitor's message to the account's owner and admins (the
    offline form, and a message answered by the offline message); True if
    sent. Failures are logged, never raised: the message is stored and in
    the inbox."""
    try:
        message = Message.objects.select_related(
            "conversation__account", "conversation__visitor", "conversation__group"
        ).get(id=message_id)
        conversation = message.conversation
        account, visitor = conversation.account, conversation.visitor
        recipients = list(
            Operator.objects.filter(
                account=account, is_active=True, role__in=[Operator.Role.OWNER, Operator.Role.ADMIN]
            )
            .order_by("id")
            .values_list("email", flat=True)
        )
        if not recipients:
            logger.warning("message %s: account has no admin to notify", message_id)
            return False
        with translation.override(account.language or "en"):
            name = " ".join((visitor.name or visitor.email or _("A visitor")).split())
            if len(name) > SUBJECT_NAME_MAX:
                name = name[: SUBJECT_NAME_MAX - 1] + "…"
            lines = [_("%(name)s wrote on your website while nobody was there.") % {"name": name}, ""]
            if conversation.group_id is not None:
                lines.append(_("Group: %(group)s") % {"group": conversation.group.name})
            if conversation.page_url:
                lines.append(_("Page: %(url)s") % {"url": conversation.page_url})
            if len(lines) > 2:
                lines.append("")
            lines += [message.body, ""]
            lines.append(_("Answer in the inbox, or reply to this e-mail to answer the visitor."))
            mail = EmailMessage(
                subject=_("New message from %(name)s") % {"name": name},
                body="\n".join(lines),
                to=recipients,
                # Answering the e-mail answers the visitor.
                reply_to=[visitor.email] if visitor.email else None,
            )
        mail.send()
    except Exception:
        logger.exception("message %s: notification e-mail failed", message_id)
        return False
    return True
