"""Conversations' answers to ``accounts.signals`` and to deletions no service of
ours sees (an FAQ entry taken along with its group or account): one service
call each, connected in ``ConversationsConfig.ready``."""

from django.db.models.signals import post_delete

from accounts.signals import busy_delay_shortened
from conversations.faq.services import faq_entry_deleted
from conversations.services import conversations_busy_reschedule


def on_busy_delay_shortened(sender: object, *, account_id: int, **kwargs: object) -> None:
    conversations_busy_reschedule(account_id=account_id)


def on_faq_entry_deleted(sender: object, instance: object, **kwargs: object) -> None:
    faq_entry_deleted(account_id=instance.account_id)  # type: ignore[attr-defined]


def connect() -> None:
    busy_delay_shortened.connect(on_busy_delay_shortened, dispatch_uid="conversations.busy_delay_shortened")
    # Every deletion of an FAQ entry: its own, and its group's or account's cascade.
    post_delete.connect(on_faq_entry_deleted, sender="conversations.FaqEntry", dispatch_uid="conversations.faq_deleted")
