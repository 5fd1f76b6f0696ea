from django.db import migrations


def forget_content_type(apps, schema_editor):
    # Its permissions go with it; admin log entries keep their text.
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="widget", model="offlinemessage").delete()


class Migration(migrations.Migration):
    """The offline messages now live in ``conversations`` (copied by its 0002)."""

    dependencies = [
        ("widget", "0002_account_moved_to_accounts"),
        ("conversations", "0002_offline_messages"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.DeleteModel(name="OfflineMessage"),
        migrations.RunPython(forget_content_type, migrations.RunPython.noop),
    ]
