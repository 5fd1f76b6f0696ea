from django.db import migrations, models


class Migration(migrations.Migration):
    """The counter the services raise to end every earlier login (0 for every
    operator: their sessions stay valid through the upgrade)."""

    dependencies = [
        ("accounts", "0003_one_owner_per_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="operator",
            name="credentials_version",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="credentials version"),
        ),
    ]
