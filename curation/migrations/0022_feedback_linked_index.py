"""Unlinked feedback is indexed by event first, and the index on feedback.interaction_id holds
linked rows only (see Feedback.Meta and curation.orphans). The new indexes are built
concurrently first, so ingest keeps writing while they build; then the old ones are dropped."""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("curation", "0021_dedup_one_lock_no_exact_key_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("interaction__isnull", True)),
                fields=["interaction_event_id", "source"],
                name="feedback_unlinked_event_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="feedback",
            index=models.Index(
                condition=models.Q(("interaction__isnull", False)),
                fields=["interaction"],
                name="feedback_linked_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="feedback", name="feedback_unlinked_idx"),
        migrations.AlterField(
            model_name="feedback",
            name="interaction",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="feedback",
                to="curation.interaction",
            ),
        ),
    ]
