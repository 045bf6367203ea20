"""Quarantine: of a dataset version, an ingest window, a source or a policy version. What it
covers is left out of every later version; quarantined versions are kept and marked; the
record is append-only and in the history with its reason."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from curation import policies
from curation.models import Source
from tests.support import training as th
from tests.support.training import days_ago
from training.datasets import selectors, services
from training.errors import TrainingError
from training.models import DatasetVersion, GoldPair, Quarantine

pytestmark = pytest.mark.django_db


def selected(version) -> set[int]:
    return set(version.members.exclude(split="excluded").values_list("pair__outcome_id", flat=True))


def excluded(version) -> dict[int, dict]:
    return {
        m.pair.outcome_id: m.detail
        for m in version.members.filter(reason="quarantined").select_related("pair")
    }


def test_a_source_quarantine_excludes_its_pairs_from_later_versions(dataset, admin):
    bad_source = Source.objects.create(name="injected")
    good = th.approved(occurred_at=days_ago(30))
    bad = th.approved(occurred_at=days_ago(30), src=bad_source)
    q = services.quarantine_create(
        kind="source", source=bad_source, reason="prompt injection", user=admin
    )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert selected(version) == {good.pk}
    assert excluded(version) == {bad.pk: {"quarantine": q.pk}}
    assert version.manifest["counts"]["excluded"] == {"quarantined": 1}
    assert version.manifest["quarantines"] == [q.pk]


def test_a_window_quarantine_covers_pairs_ingested_inside_it(dataset, admin):
    before = th.approved(occurred_at=days_ago(40), received_at=days_ago(40))
    inside = th.approved(occurred_at=days_ago(30), received_at=days_ago(30))
    after = th.approved(occurred_at=days_ago(20), received_at=days_ago(20))
    services.quarantine_create(
        kind="window",
        window_start=days_ago(31),
        window_end=days_ago(29),
        reason="a bad week",
        user=admin,
    )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert selected(version) == {before.pk, after.pk}
    assert set(excluded(version)) == {inside.pk}


def test_a_policy_quarantine_covers_pairs_curated_under_that_version(dataset, admin):
    lax = policies.policy_create(changes={"toxicity_threshold": 0.9}, note="too lax")
    strict = policies.policy_create(changes={"toxicity_threshold": 0.1})
    under_lax = th.approved(occurred_at=days_ago(30), policy=lax)
    under_strict = th.approved(occurred_at=days_ago(30), policy=strict)
    services.quarantine_create(kind="policy", policy=lax, reason="let toxic text in", user=admin)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert selected(version) == {under_strict.pk}
    assert set(excluded(version)) == {under_lax.pk}


def test_a_version_quarantine_marks_it_and_drops_only_the_pairs_it_added(dataset, admin):
    first = [th.approved(occurred_at=days_ago(40)) for _ in range(3)]
    v1, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    week = [th.approved(occurred_at=days_ago(30)) for _ in range(2)]
    v2, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    q = services.quarantine_create(
        kind="dataset_version", dataset_version=v2, reason="poisoned week", user=admin
    )
    v2.refresh_from_db()
    assert v2.previous == v1
    assert v2.status == DatasetVersion.Status.QUARANTINED
    assert v2.quarantined_at is not None
    later = th.approved(occurred_at=days_ago(20))
    v3, created = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert created and v3.number == 3
    assert selected(v3) == {o.pk for o in first} | {later.pk}
    assert excluded(v3) == {o.pk: {"quarantine": q.pk} for o in week}
    # The quarantined version is kept as it was, and the hash chain runs through it.
    assert selected(DatasetVersion.objects.get(pk=v2.pk)) == {o.pk for o in first + week}
    assert v3.previous == v2
    assert v3.previous_manifest_sha256 == v2.manifest_sha256


def test_after_quarantining_the_latest_version_a_freeze_makes_a_new_one(dataset, admin):
    th.approved(occurred_at=days_ago(30))
    v1, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    services.quarantine_create(kind="dataset_version", dataset_version=v1, reason="r")
    v2, created = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert created and v2.number == 2
    assert selected(v2) == set()


def test_quarantines_apply_to_every_dataset(admin):
    bad_source = Source.objects.create(name="injected")
    th.approved(occurred_at=days_ago(30), src=bad_source)
    services.quarantine_create(kind="source", source=bad_source, reason="r")
    for name in ("a", "b"):
        dataset = services.dataset_create(name=name, user=admin)
        version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
        assert selected(version) == set()


def test_a_quarantine_is_recorded_in_the_history_with_its_reason(dataset, admin):
    th.approved(occurred_at=days_ago(30))
    v1, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    services.quarantine_create(
        kind="dataset_version", dataset_version=v1, reason="attack", user=admin
    )
    event = Quarantine.pgh_event_model.objects.get()
    assert event.reason == "attack"
    assert event.pgh_context.metadata["reason"] == "attack"
    status_change = DatasetVersion.pgh_event_model.objects.filter(status="quarantined").get()
    assert status_change.pgh_context.metadata["reason"] == "attack"


@pytest.mark.parametrize(
    "sql",
    ["UPDATE training_quarantine SET reason = 'never mind'", "DELETE FROM training_quarantine"],
)
def test_quarantines_are_append_only_in_the_database(admin, sql):
    source = Source.objects.create(name="x")
    services.quarantine_create(kind="source", source=source, reason="r", user=admin)
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert Quarantine.objects.get().reason == "r"


def test_a_quarantined_version_cannot_be_unquarantined_in_the_database(dataset, admin):
    th.approved(occurred_at=days_ago(30))
    v1, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    services.quarantine_create(kind="dataset_version", dataset_version=v1, reason="r")
    with pytest.raises(DatabaseError), transaction.atomic():
        DatasetVersion.objects.filter(pk=v1.pk).update(status="frozen")
    assert DatasetVersion.objects.get(pk=v1.pk).status == "quarantined"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "source", "reason": " "}, services.ERR_QUARANTINE_REASON),
        ({"kind": "moon", "reason": "r"}, services.ERR_QUARANTINE_KIND.format(kind="moon")),
        (
            {"kind": "source", "reason": "r"},
            services.ERR_QUARANTINE_MISSING.format(kind="source", field="source"),
        ),
        (
            {"kind": "policy", "reason": "r"},
            services.ERR_QUARANTINE_MISSING.format(kind="policy", field="policy"),
        ),
        (
            {"kind": "window", "reason": "r", "window_start": timezone.now()},
            services.ERR_QUARANTINE_MISSING.format(kind="window", field="window_end"),
        ),
    ],
)
def test_a_quarantine_is_refused_with_a_message_when_incomplete(kwargs, message):
    with pytest.raises(TrainingError) as error:
        services.quarantine_create(**kwargs)
    assert str(error.value) == message


def test_versions_affected_by_a_quarantine_are_the_ones_holding_its_pairs(admin):
    bad_source = Source.objects.create(name="injected")
    a = services.dataset_create(name="a", user=admin)
    b = services.dataset_create(name="b", user=admin)
    th.approved(occurred_at=days_ago(30))
    services.dataset_version_freeze(dataset=a, user=admin)
    th.approved(occurred_at=days_ago(30), src=bad_source)
    b1, _ = services.dataset_version_freeze(dataset=b, user=admin)
    q = services.quarantine_create(kind="source", source=bad_source, reason="r")
    assert list(selectors.versions_affected(quarantine=q)) == [b1]
    assert GoldPair.objects.filter(source=bad_source).count() == 1
