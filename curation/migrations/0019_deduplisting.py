from django.db import migrations, models

# Every (key, candidate) pair the claim rows' arrays list, in key order so the primary key
# is built at its end. Frozen here: a migration must not follow later edits of the code.
FILL = """
INSERT INTO curation_deduplisting (key, candidate_id, xid)
SELECT c.key, l.id, pg_current_xact_id()::text::bigint
FROM curation_dedupclaim c, unnest(c.candidate_ids) AS l(id)
ORDER BY 1, 2
ON CONFLICT DO NOTHING
"""


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0018_dedupclaim_candidate_ids_replaces_lsh_gin"),
    ]

    operations = [
        migrations.CreateModel(
            name="DedupListing",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "key",
                        "candidate_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("key", models.BigIntegerField()),
                ("candidate_id", models.BigIntegerField()),
                ("xid", models.BigIntegerField()),
            ],
            options={
                "indexes": [models.Index(fields=["xid"], name="dedup_listing_xid")],
            },
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]
