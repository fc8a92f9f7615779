from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_audit_trail"),
    ]

    operations = [
        migrations.AddField(
            model_name="review",
            name="conditions",
            field=models.JSONField(blank=True, default=dict, help_text='e.g. {"grant_valid_days": 90}'),
        ),
    ]
