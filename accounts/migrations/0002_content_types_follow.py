"""The content types of the moved models follow them to ``accounts``.

Renaming the rows (not creating new ones) keeps their ids, so permissions
granted on these models and the admin's log entries about them stay attached.
On a new database there is nothing to rename yet: the content types are
created after the migrations, under ``accounts`` already.
"""

from django.db import migrations

MOVED = ("account", "operator", "apitoken")


def forwards(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        old = content_type.objects.using(db).filter(app_label="presence", model=model)
        if not old.exists():
            continue
        # A row under the new label can only come from a run of the new code on
        # the old history (post_migrate creating it): it holds nothing yet.
        content_type.objects.using(db).filter(app_label="accounts", model=model).delete()
        old.update(app_label="accounts")


def backwards(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    content_type.objects.using(db).filter(app_label="accounts", model__in=MOVED).update(app_label="presence")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
