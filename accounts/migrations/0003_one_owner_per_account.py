from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_content_types_follow"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="operator",
            constraint=models.UniqueConstraint(
                condition=models.Q(("role", "owner")),
                fields=("account",),
                name="operator_one_owner_per_account",
                violation_error_message="An account has exactly one owner.",
            ),
        ),
    ]
