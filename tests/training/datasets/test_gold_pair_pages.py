"""One gold pair at a time: its page, quarantine (confirmed, with a reason, recorded with who)
and correction; links to it from a version's diff; and the guards on the other consequential
actions (version quarantine, promote, reject) and on a freeze that would make nothing new."""

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from tests.support import training as th
from tests.support.training import old, registered
from training.datasets import selectors, services
from training.datasets.forms import REASON_REQUIRED
from training.errors import TrainingError
from training.models import DatasetVersion, GoldPair, ModelEvent, ModelVersion, Quarantine
from training.registry import services as registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(admin):
    return services.dataset_create(name="support", user=admin)


@pytest.fixture
def v1(dataset, admin):
    """Six pairs, frozen: small enough that every pair shows in the diff's sample."""
    for _ in range(6):
        th.approved(occurred_at=old())
    return services.dataset_version_freeze(dataset=dataset, user=admin)[0]


def kept(version) -> set[int]:
    return set(version.members.exclude(split="excluded").values_list("pair_id", flat=True))


def pair_in(version) -> GoldPair:
    return GoldPair.objects.get(pk=min(kept(version)))


# --- service --------------------------------------------------------------------------------


def test_a_pair_quarantine_leaves_out_that_pair_alone_and_keeps_frozen_versions(dataset, admin, v1):
    bad = pair_in(v1)
    before = list(v1.members.order_by("pk").values_list("pair_id", "split", "reason"))
    q = services.quarantine_create(kind="pair", pair=bad, reason="leaks a phone number", user=admin)
    th.approved(occurred_at=old())
    v2, created = services.dataset_version_freeze(dataset=dataset, user=admin)

    assert created
    assert kept(v2) == (kept(v1) - {bad.pk}) | (kept(v2) - kept(v1))
    assert len(kept(v2) - kept(v1)) == 1  # the new pair entered; only the bad one left
    assert v2.members.get(pair=bad).detail == {"quarantine": q.pk}
    assert v2.manifest["quarantines"] == [q.pk]
    v1.refresh_from_db()
    assert v1.status == "frozen"  # the version itself is not quarantined
    assert list(v1.members.order_by("pk").values_list("pair_id", "split", "reason")) == before
    assert selectors.pair_quarantine(pair=bad) == q
    assert selectors.pair_quarantine(pair=GoldPair.objects.exclude(pk=bad.pk).first()) is None


def test_a_pair_is_quarantined_once_and_needs_a_reason(admin, v1):
    pair = pair_in(v1)
    with pytest.raises(TrainingError, match="needs a reason"):
        services.quarantine_create(kind="pair", pair=pair, reason="  ", user=admin)
    with pytest.raises(TrainingError, match="needs its pair"):
        services.quarantine_create(kind="pair", reason="r", user=admin)
    services.quarantine_create(kind="pair", pair=pair, reason="bad", user=admin)
    with pytest.raises(TrainingError) as twice:
        services.quarantine_create(kind="pair", pair=pair, reason="again", user=admin)
    assert twice.value.status == 409
    assert Quarantine.objects.count() == 1


def test_the_database_refuses_a_pair_quarantine_without_its_pair(v1):
    with pytest.raises(DatabaseError), transaction.atomic():
        Quarantine.objects.create(kind="pair", reason="r")
    with pytest.raises(DatabaseError), transaction.atomic():
        Quarantine.objects.create(kind="source", pair=pair_in(v1), reason="r")


def test_quarantining_a_pair_rolls_back_the_models_trained_on_it(admin, v1):
    model = registered(v1, status="promoted", promoted_at=timezone.now())
    services.quarantine_apply(kind="pair", pair=pair_in(v1), reason="bad", user=admin)
    model.refresh_from_db()
    assert model.status == ModelVersion.Status.ROLLED_BACK


# --- pages ----------------------------------------------------------------------------------


def test_a_version_diff_links_every_gold_pair(as_user, admin, dataset, v1):
    page = as_user(admin).get("/datasets/support/v1/diff/").content.decode()
    for pk in kept(v1):
        assert f'href="/datasets/pairs/{pk}/"' in page


def test_the_pair_page_shows_the_pair_its_versions_and_both_actions(as_user, admin, v1):
    pair = pair_in(v1)
    page = as_user(admin).get(f"/datasets/pairs/{pair.pk}/").content.decode()
    assert f"Gold pair #{pair.pk}" in page
    assert pair.chosen in page
    assert 'href="/datasets/support/v1/"' in page
    assert f'href="/datasets/pairs/{pair.pk}/quarantine/"' in page
    assert f'action="/datasets/pairs/{pair.pk}/correct/"' in page


def test_an_unknown_pair_is_404(as_user, admin):
    assert as_user(admin).get("/datasets/pairs/999999/").status_code == 404
    assert (
        as_user(admin).post("/datasets/pairs/999999/quarantine/", {"reason": "x"}).status_code
        == 404
    )


def test_the_confirmation_says_what_a_pair_quarantine_touches_and_changes_nothing(
    as_user, admin, v1
):
    pair = pair_in(v1)
    model = registered(v1)
    response = as_user(admin).get(f"/datasets/pairs/{pair.pk}/quarantine/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>1</strong> frozen version(s) hold it" in page
    assert "<strong>1</strong> model(s) trained on them will be rolled back" in page
    assert model.name in page
    assert not Quarantine.objects.exists()


def test_a_pair_quarantine_without_a_reason_is_refused_and_changes_nothing(as_user, admin, v1):
    pair = pair_in(v1)
    response = as_user(admin).post(f"/datasets/pairs/{pair.pk}/quarantine/", {"reason": " "})
    assert response.status_code == 422
    assert REASON_REQUIRED in response.content.decode()
    assert not Quarantine.objects.exists()


def test_a_confirmed_pair_quarantine_is_recorded_with_who_and_why(as_user, admin, v1):
    pair = pair_in(v1)
    response = as_user(admin).post(
        f"/datasets/pairs/{pair.pk}/quarantine/", {"reason": "leaks a phone number"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/datasets/pairs/{pair.pk}/"
    q = Quarantine.objects.get()
    assert (q.kind, q.pair, q.reason, q.created_by) == (
        "pair",
        pair,
        "leaks a phone number",
        admin,
    )
    event = Quarantine.pgh_event_model.objects.get()
    assert event.pgh_context.metadata["user"] == admin.pk
    assert event.pgh_context.metadata["reason"] == "leaks a phone number"
    page = response.content.decode()
    assert f"Quarantined gold pair #{pair.pk}" in page
    assert "Already quarantined" in page
    # A second confirmation (double click, second admin) is told, not applied twice.
    again = as_user(admin).post(f"/datasets/pairs/{pair.pk}/quarantine/", {"reason": "again"})
    assert again.status_code == 409
    assert Quarantine.objects.count() == 1


def test_a_correction_from_the_pair_page_supersedes_the_pair(as_user, admin, dataset, v1):
    pair = pair_in(v1)
    client = as_user(admin)
    refused = client.post(
        f"/datasets/pairs/{pair.pk}/correct/", {"chosen": "Better.", "reason": ""}
    )
    assert refused.status_code == 422
    assert GoldPair.objects.filter(supersedes=pair).count() == 0
    # The refusal is shown at the action's URL: Back or reload there reaches the pair page.
    back = client.get(f"/datasets/pairs/{pair.pk}/correct/", follow=True)
    assert back.redirect_chain == [(f"/datasets/pairs/{pair.pk}/", 302)]
    assert back.status_code == 200

    response = client.post(
        f"/datasets/pairs/{pair.pk}/correct/",
        {"chosen": "A better answer.", "rejected": pair.rejected, "reason": "typo in the price"},
        follow=True,
    )
    new = GoldPair.objects.get(supersedes=pair)
    assert response.redirect_chain[-1][0] == f"/datasets/pairs/{new.pk}/"
    assert (new.chosen, new.correction_reason, new.created_by) == (
        "A better answer.",
        "typo in the price",
        admin,
    )
    old_page = client.get(f"/datasets/pairs/{pair.pk}/").content.decode()
    assert f'Corrected by gold pair <a href="/datasets/pairs/{new.pk}/">' in old_page
    v2, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert new.pk in kept(v2) and pair.pk not in kept(v2)


def test_a_correction_that_changes_nothing_is_refused(as_user, admin, v1):
    pair = pair_in(v1)
    response = as_user(admin).post(
        f"/datasets/pairs/{pair.pk}/correct/",
        {"chosen": pair.chosen, "rejected": pair.rejected, "reason": "x"},
    )
    assert response.status_code == 400
    assert services.ERR_CORRECTION_UNCHANGED in response.content.decode()
    assert GoldPair.objects.filter(supersedes=pair).count() == 0


def test_the_quarantine_list_links_a_pair_quarantine(as_user, admin, v1):
    pair = pair_in(v1)
    services.quarantine_create(kind="pair", pair=pair, reason="bad", user=admin)
    page = as_user(admin).get("/datasets/quarantines/").content.decode()
    assert f'<a href="/datasets/pairs/{pair.pk}/">#{pair.pk}</a>' in page


# --- freeze guard ---------------------------------------------------------------------------


def test_freeze_is_disabled_with_the_reason_when_nothing_new_would_enter(as_user, admin, v1):
    client = as_user(admin)
    page = client.get("/datasets/support/").content.decode()
    assert 'class="primary" disabled' in page
    assert selectors.FREEZE_NOTHING_NEW.format(lag=14, latest="v1") in page
    # A quarantine since the freeze changes what the next version holds.
    services.quarantine_create(kind="pair", pair=pair_in(v1), reason="bad", user=admin)
    page = client.get("/datasets/support/").content.decode()
    assert "Freeze version 2</button>" in page and 'class="primary" disabled' not in page


def test_freeze_is_offered_when_new_gold_would_enter(as_user, admin, v1):
    th.approved(occurred_at=old())
    page = as_user(admin).get("/datasets/support/").content.decode()
    assert 'class="primary" disabled' not in page


def test_a_dataset_with_nothing_past_the_lag_says_so(as_user, admin, dataset):
    th.approved(occurred_at=timezone.now())  # inside the 14-day lag
    services.gold_pairs_sync()
    page = as_user(admin).get("/datasets/support/").content.decode()
    assert selectors.FREEZE_NOTHING_YET.format(lag=14) in page


# --- other guarded actions ------------------------------------------------------------------


def test_the_version_quarantine_states_its_consequence_first(as_user, admin, v1):
    registered(v1)
    page = as_user(admin).get("/datasets/support/v1/").content.decode()
    assert '<details class="confirm">' in page
    assert f"<strong>{len(kept(v1))}</strong> pair(s) this version added" in page
    assert "<strong>1</strong> model(s) trained on it will be rolled back" in page


@pytest.mark.parametrize("decision", ["promote", "reject"])
def test_promote_and_reject_need_a_reason_and_record_who(as_user, admin, v1, decision, settings):
    settings.FLYWHEEL_CANARY = False  # promotion makes the model current at once (no canary)
    model = registered(v1)
    client = as_user(admin)
    refused = client.post(f"/training/models/{model.pk}/{decision}/", {"reason": ""})
    assert refused.status_code == 422
    assert registry.ERR_REASON in refused.content.decode()
    model.refresh_from_db()
    assert model.status == "candidate"
    assert not ModelEvent.objects.filter(model=model, user=admin).exists()

    client.post(f"/training/models/{model.pk}/{decision}/", {"reason": "held-out accuracy"})
    model.refresh_from_db()
    assert model.status == ("promoted" if decision == "promote" else "rejected")
    event = ModelEvent.objects.filter(model=model, user=admin).get()
    assert event.reason == "held-out accuracy"


def test_promote_needs_a_reason_in_the_service_too(admin, v1):
    model = registered(v1)
    with pytest.raises(TrainingError, match=registry.ERR_REASON):
        registry.model_version_promote(model=model, user=admin, reason=" ")
    assert ModelVersion.objects.get(pk=model.pk).status == "candidate"


def test_composition_bars_draw_the_empty_part_as_a_track(as_user, admin, v1):
    page = as_user(admin).get("/datasets/support/v1/").content.decode()
    assert '<rect class="track" width="100" height="1"/>' in page
    assert DatasetVersion.objects.get().status == "frozen"
