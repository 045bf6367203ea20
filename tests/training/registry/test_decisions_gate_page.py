"""The gate's attempts on one dataset's eval pairs, counted from the registry, and the model
page saying how the error was spent and what the candidate was compared with."""

import pytest

from tests.support import factories
from tests.support.training import frozen_version, registered
from training.registry import gate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("export_dir")]


def test_each_candidate_gated_on_a_datasets_pairs_is_a_further_attempt(admin):
    version = frozen_version(admin)
    registered(version)
    registered(version, gate_passed=False)
    registered(version, gate_passed=None)  # not gated: no look at the pairs
    run = factories.training_run(version)

    assert gate.gate_attempt(run) == 3


def test_the_model_page_says_how_the_error_was_spent_and_what_was_compared(admin, as_user):
    record = {
        "metric": "implicit_reward_accuracy", "n": 60, "delta": 0.2, "delta_ci": [0.05, 0.3],
        "candidate": 0.7, "baseline": 0.5, "margin": 0.02, "min_pairs": 50, "passed": True,
        "test": "one-sided exact binomial bound (Clopper-Pearson 1934), one-sided alpha 0.0038",
        "spending": gate.SPENDING.format(attempt=2, dataset="support", alpha=0.0038, total=0.025),
        "compared_with": gate.COMPARED_OWN_BASE.format(base="/models/other", name="support-1"),
    }  # fmt: skip
    model = registered(frozen_version(admin), metrics={"gate": record})

    page = as_user(admin).get(f"/training/models/{model.pk}/").content.decode()

    assert "attempt 2 of dataset support" in page and 'id="gate-spending"' in page
    assert "not with the current model support-1" in page
    assert "Clopper-Pearson" in page


def test_the_model_page_states_a_failed_verdict_once(admin, as_user):
    model = registered(
        frozen_version(admin), gate_passed=False, gate_detail="fails: normalised_accuracy 0.4"
    )

    page = as_user(admin).get(f"/training/models/{model.pk}/").content.decode()

    assert "failed fails" not in page and 'class="error">failed</span>' in page
    assert '<span class="muted" id="gate-reason">normalised_accuracy 0.4</span>' in page
