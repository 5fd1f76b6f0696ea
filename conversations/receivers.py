"""Conversations' answers to deletions no service of ours sees (an FAQ entry
taken along with its group or account): one service call each, connected in
``ConversationsConfig.ready``."""

from django.db.models.signals import post_delete

from conversations.faq.services import faq_entry_deleted


def on_faq_entry_deleted(sender: object, instance: object, **kwargs: object) -> None:
    faq_entry_deleted(account_id=instance.account_id)  # type: ignore[attr-defined]


def connect() -> None:
    # Every deletion of an FAQ entry: its own, and its group's or account's cascade.
    post_delete.connect(on_faq_entry_deleted, sender="conversations.FaqEntry", dispatch_uid="conversations.faq_deleted")
