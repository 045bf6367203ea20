"""Erasure reaches every copy Flywheel made: no trace of the user's unfrozen text is left in
any table, export files that belong to no frozen version are removed from disk, and webhook
payloads and receivers' responses mentioning the user are redacted."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from curation import pipeline
from curation.ingest_rows import user_hash
from curation.models import Interaction
from flywheel_site.audit import sql
from flywheel_site.audit.models import Erasure
from tests.support import training as th
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, ingest, no_toxicity
from tests.support.factories import feedback, interaction
from training.datasets import export, services
from training.models import (
    DatasetVersion,
    GoldPair,
    Membership,
    Quarantine,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from training.webhooks import services as webhooks

pytestmark = pytest.mark.django_db(transaction=True)

RAW = "alice@example.com"
MARKER = "Zanzibarquokka"

TEXT_COLUMNS = """
SELECT c.table_name, c.column_name FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
  AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')
"""


def tables_mentioning(needle: str) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        cursor.execute(TEXT_COLUMNS)
        for table, column in cursor.fetchall():
            cursor.execute(
                sql.query(
                    "SELECT 1 FROM {table} WHERE strpos({column}::text, %s) > 0 LIMIT 1",
                    table=table,
                    column=column,
                ),
                [needle],
            )
            if cursor.fetchone():
                found.append(f"{table}.{column}")
    return found


def alices_unfrozen_data() -> None:
    ingest(
        interactions=[interaction("a-1", user_id=RAW, response=f"{GOOD_ANSWER} {MARKER}")],
        feedback=[
            feedback("a-1", "a-fb", kind="edited", final_text=f"{GOOD_EDIT} {MARKER}", user_id=RAW)
        ],
    )
    pipeline.interactions_curate(interaction_ids=[Interaction.objects.get(event_id="a-1").pk])


def alices_unfrozen_gold(*, admin, dataset, frozen_pair: GoldPair) -> list[int]:
    """Gold of alice's that no frozen version holds: a pair approved after the freeze, in a
    draft version and quarantined by hand, its correction, and a correction of the frozen
    pair. Returns their ids."""
    outcome = th.approved(chosen=f"approved {MARKER}", occurred_at=timezone.now())
    Interaction.objects.filter(pk=outcome.item.candidate.interaction_id).update(
        user_hash=user_hash(RAW)
    )
    pair = services.gold_pair_create(outcome=outcome)
    draft = DatasetVersion.objects.create(
        dataset=dataset,
        number=2,
        kind=dataset.kind,
        lag_days=0,
        eval_fraction=0.0,
        near_dup_threshold=0.8,
        cutoff=timezone.now(),
    )
    Membership.objects.create(version=draft, pair=pair, split="train")
    services.quarantine_apply(kind=Quarantine.Kind.PAIR, pair=pair, reason="looks off", user=admin)
    fixes = [
        services.gold_pair_correct(pair=p, chosen=f"fixed {MARKER}", user=admin, reason="typo")
        for p in (pair, frozen_pair)
    ]
    return [pair.pk] + [fix.pk for fix in fixes]


def webhook_log(hashed: str) -> dict:
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/in",
        secret=webhooks.secret_generate(),
        event_types=["quarantine.applied"],
    )
    rows = {}
    for who, data in (("alice", {"user": hashed}), ("bob", {"user": user_hash("bob")})):
        event = WebhookEvent.objects.create(
            type="quarantine.applied", timestamp=timezone.now(), data=data
        )
        delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint)
        WebhookAttempt.objects.create(
            delivery=delivery, number=1, started_at=timezone.now(), response_excerpt=f"ok {who}"
        )
        rows[who] = event
    echo = WebhookDelivery.objects.get(event=rows["bob"])
    WebhookAttempt.objects.create(
        delivery=echo, number=2, started_at=timezone.now(), response_excerpt=f"hi {RAW}"
    )
    return rows


def test_no_copy_of_the_users_unfrozen_data_is_left_anywhere(admin):
    no_toxicity(sample_rate=1.0)
    hashed = user_hash(RAW)
    dataset = services.dataset_create(name="support", user=admin, lag_days=0)
    outcome = th.approved(occurred_at=timezone.now() - timedelta(days=1))
    Interaction.objects.filter(pk=outcome.item.candidate.interaction_id).update(user_hash=hashed)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    frozen_dir = export.dataset_version_materialize(version=version)
    stale = export.export_root() / "support" / "v7-0123456789ab" / "dpo_standard" / "train.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text(f'{{"chosen": "{MARKER}"}}\n')
    leftover = export.export_root() / "support" / ".v1-0123.tmp-dead"
    leftover.mkdir()
    alices_unfrozen_data()
    frozen_pair = GoldPair.objects.get(outcome=outcome)
    unfrozen = alices_unfrozen_gold(admin=admin, dataset=dataset, frozen_pair=frozen_pair)
    events = webhook_log(hashed)
    assert tables_mentioning(MARKER)  # the scan sees the text before the erasure

    call_command("erase_user", RAW)

    assert tables_mentioning(MARKER) == []
    assert not stale.exists() and not leftover.exists()
    assert (frozen_dir / export.COMPLETE_MARKER).is_file()
    events["alice"].refresh_from_db()
    events["bob"].refresh_from_db()
    assert events["alice"].data == {"redacted": "erasure request"}
    assert events["bob"].data == {"user": user_hash("bob")}
    excerpts = set(WebhookAttempt.objects.values_list("response_excerpt", flat=True))
    assert excerpts == {"", "ok bob"}
    counts = Erasure.objects.get().counts
    assert counts["export_entries_removed"] == 2 and counts["webhook_payloads_redacted"] == 1
    # Gold in no frozen version left with its draft membership and pair quarantine; the
    # frozen pair stays, as frozen, quarantined, with its version.
    assert not GoldPair.objects.filter(pk__in=unfrozen).exists()
    assert list(GoldPair.objects.values_list("pk", flat=True)) == [frozen_pair.pk]
    assert not Membership.objects.filter(version__status="draft").exists()
    assert counts["gold_pairs"] == 3 and counts["gold_pairs_kept"] == 1
    assert Quarantine.objects.filter(kind="pair", pair=frozen_pair).exists()
    assert DatasetVersion.objects.get(pk=version.pk).status == "quarantined"
