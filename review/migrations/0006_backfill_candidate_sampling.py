"""Candidates queued before curation recorded its sampling decision on the
candidate get that decision from their review item (curation 0007 moved it)."""

from django.db import migrations

FORWARD = """
UPDATE curation_candidate c
SET sampled_at = i.created_at, sample_stratum = i.stratum,
    inclusion_probability = i.inclusion_probability, priority = i.priority,
    priority_details = i.priority_details
FROM review_reviewitem i
WHERE i.candidate_id = c.id AND c.sampled_at IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0005_default_guidelines"),
        ("curation", "0007_candidate_sampling"),
    ]

    operations = [migrations.RunSQL(FORWARD, migrations.RunSQL.noop)]
