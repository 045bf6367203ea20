from django.db import migrations, models

# Going back: the arrays again from the listing (what the code before 0019 reads).
REFILL = """
INSERT INTO curation_dedupclaim (key, candidate_ids)
SELECT key, array_agg(candidate_id ORDER BY candidate_id) FROM curation_deduplisting
GROUP BY key ORDER BY key
ON CONFLICT (key) DO UPDATE SET candidate_ids = excluded.candidate_ids
"""


class Migration(migrations.Migration):
    """The claim rows are only locked now (`curation.candidates.dedup_keys_lock`): their
    arrays, copied into the listing by 0019, go, and so does the free space left on each
    page for updating them in place. Safe once every worker runs the code of 0019 (the
    deploy stops every worker before migrating): nothing reads the arrays any more. The
    old arrays' space is reused as rows change, or given back by VACUUM FULL."""

    dependencies = [
        ("curation", "0019_deduplisting"),
    ]

    operations = [
        migrations.RunSQL(migrations.RunSQL.noop, REFILL),
        migrations.RemoveField(
            model_name="dedupclaim",
            name="candidate_ids",
        ),
        migrations.RunSQL(
            "ALTER TABLE curation_dedupclaim RESET (fillfactor)",
            "ALTER TABLE curation_dedupclaim SET (fillfactor = 70)",
        ),
    ]
