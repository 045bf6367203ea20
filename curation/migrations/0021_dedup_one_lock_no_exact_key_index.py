from django.db import migrations, models

# Going back: a lock row for every key listed, as the code of 0020 expects to find them.
REGISTER = """
INSERT INTO curation_dedupclaim (key)
SELECT DISTINCT key FROM curation_deduplisting ORDER BY key
ON CONFLICT (key) DO NOTHING
"""


class Migration(migrations.Migration):
    """Dedup takes one advisory lock for its short re-check (`curation.candidates
    .dedup_keys_lock`) instead of a lock row per key, so the lock rows go; and the
    candidates' exact key loses its two indexes (one for `LIKE`), which nothing has read
    since dedup matched through the listing. Stop every worker before migrating, as for
    0020: a worker of 0020's code would lock rows that are gone."""

    dependencies = [
        ("curation", "0020_dedupclaim_lock_rows_only"),
    ]

    operations = [
        migrations.RunSQL(migrations.RunSQL.noop, REGISTER),
        migrations.DeleteModel(
            name="DedupClaim",
        ),
        migrations.AlterField(
            model_name="candidate",
            name="exact_key",
            field=models.CharField(max_length=64),
        ),
    ]
