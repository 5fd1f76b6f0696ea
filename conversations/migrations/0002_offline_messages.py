"""The offline messages of the widget's old form become conversations: one
visitor (with a token nobody holds) and one conversation per message, closed
when the message was marked handled. Nothing waits for a busy message."""

import hashlib
import secrets

from django.db import migrations

BODY_MAX = 4000


def forwards(apps, schema_editor):
    OfflineMessage = apps.get_model("widget", "OfflineMessage")
    Visitor = apps.get_model("conversations", "Visitor")
    Conversation = apps.get_model("conversations", "Conversation")
    Message = apps.get_model("conversations", "Message")
    for old in OfflineMessage.objects.order_by("id").iterator():
        visitor = Visitor.objects.create(
            account_id=old.account_id,
            token_hash=hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest(),
            name=old.name[:100],
            email=old.email,
            first_page=old.page_url,
            created_at=old.created_at,
        )
        conversation = Conversation.objects.create(
            account_id=old.account_id,
            group_id=old.group_id,
            visitor=visitor,
            status="closed" if old.handled_at else "open",
            page_url=old.page_url,
            last_seq=1,
            created_at=old.created_at,
            last_message_at=old.created_at,
            closed_at=old.handled_at,
        )
        # The form allowed 5,000 characters, messages hold 4,000: the rest follows in a second message.
        bodies = [old.message[i : i + BODY_MAX] for i in range(0, max(len(old.message), 1), BODY_MAX)]
        for seq, body in enumerate(bodies, start=1):
            Message.objects.create(
                conversation=conversation,
                seq=seq,
                author="visitor",
                kind="text",
                body=body,
                client_id=f"offline-form:{old.id}:{seq}",
                created_at=old.created_at,
            )
        Conversation.objects.filter(id=conversation.id).update(last_seq=len(bodies))


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0001_initial"),
        ("widget", "0002_account_moved_to_accounts"),
    ]

    # Not reversible: the widget's table goes in the next widget migration.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
