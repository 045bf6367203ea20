"""In Chromium: an admin opens a gold pair from a version's diff, quarantines it through the
confirmation page with a reason, and the database holds exactly that; the run page draws
its loss chart (axes, train and eval loss) under the Content-Security-Policy."""

import pytest

from tests.support.browser import ARTIFACTS
from tests.support.training import frozen_version, registered
from training.models import GoldPair, ModelVersion, Quarantine, TrainingRun

REASON = "the chosen answer quotes a customer's phone number"


@pytest.fixture
def site(admin):
    version = frozen_version(admin, n=4)
    model = registered(version)
    run = model.run
    TrainingRun.objects.filter(pk=run.pk).update(
        loss_curve=[[step, round(0.6931 - 0.012 * step, 4)] for step in range(1, 31)],
        eval_loss_curve=[[step, round(0.70 - 0.008 * step, 4)] for step in (6, 12, 18, 24, 30)],
        progress_step=30,
        progress_total=30,
        progress_loss=0.3331,
        log="".join(
            f"12:00:{step:02d}.{step * 37 % 1000:03d} step {step}/30 loss=0.6\n"
            for step in range(1, 31)
        ),
    )
    return {"admin": admin, "version": version, "model": model, "run": run}


def test_a_single_pair_quarantine_with_confirmation(
    browser_page, live_server, site, csp_violations
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser_page(site["admin"])

    # The version page loads its diff by HTMX; every gold pair in it is a link.
    page.goto(f"{live_server.url}/datasets/support/v1/")
    first = page.locator('#diff a[href^="/datasets/pairs/"]').first
    first.wait_for()
    pair_pk = int(first.inner_text().lstrip("#"))
    page.screenshot(path=str(ARTIFACTS / "dataset-version.png"), full_page=True)
    first.click()
    page.wait_for_url(f"{live_server.url}/datasets/pairs/{pair_pk}/")

    # First step: the confirmation, which says what the quarantine touches.
    page.get_by_role("link", name="Quarantine this pair…").click()
    page.wait_for_url(f"{live_server.url}/datasets/pairs/{pair_pk}/quarantine/")
    consequence = page.locator("main ul").inner_text()
    button = page.get_by_role("button", name=f"Quarantine gold pair #{pair_pk}")
    # Without a reason the browser does not even send the form.
    button.click()
    still_asking = page.url.endswith(f"/datasets/pairs/{pair_pk}/quarantine/")
    nothing_yet = not Quarantine.objects.exists()
    page.screenshot(path=str(ARTIFACTS / "gold-pair-confirm.png"), full_page=True)

    # Second step: a reason, then confirm.
    page.get_by_label("Reason (required)").fill(REASON)
    button.click()
    page.wait_for_url(f"{live_server.url}/datasets/pairs/{pair_pk}/")
    banner = page.locator(".banner.bad").inner_text()
    page.screenshot(path=str(ARTIFACTS / "gold-pair.png"), full_page=True)

    # The run page: Chart.js draws train and eval loss on labelled axes.
    page.goto(f"{live_server.url}/training/runs/{site['run'].pk}/")
    page.wait_for_function(
        "() => window.Chart && Chart.getChart(document.querySelector('canvas.loss-canvas'))"
    )
    chart = page.evaluate(
        """() => {
            const c = Chart.getChart(document.querySelector('canvas.loss-canvas'));
            return {
                x: c.options.scales.x.title.text,
                y: c.options.scales.y.title.text,
                series: c.data.datasets.map(d => [d.label, d.data.length]),
                legend: c.options.plugins.legend.display,
            };
        }"""
    )
    page.locator("summary", has_text="Loss per step (table)").click()
    page.screenshot(path=str(ARTIFACTS / "training-run.png"), full_page=True)

    assert "1 frozen version(s) hold it in train or eval: support v1" in consequence
    assert "1 model(s) trained on them will be rolled back" in consequence
    assert site["model"].name in consequence
    assert still_asking and nothing_yet
    quarantine = Quarantine.objects.get()
    assert (quarantine.kind, quarantine.pair_id, quarantine.reason, quarantine.created_by) == (
        "pair",
        pair_pk,
        REASON,
        site["admin"],
    )
    event = Quarantine.pgh_event_model.objects.get()
    assert event.pgh_context.metadata["user"] == site["admin"].pk
    assert REASON in banner
    # The frozen version kept the pair; the model trained on it was rolled back.
    assert site["version"].members.filter(pair_id=pair_pk).exclude(split="excluded").exists()
    assert ModelVersion.objects.get(pk=site["model"].pk).status == "rolled_back"
    assert GoldPair.objects.filter(pk=pair_pk).exists()
    assert chart == {
        "x": "step (optimiser updates)",
        "y": "loss (unitless, lower is better)",
        "series": [["train loss", 30], ["eval loss (held-out split)", 5]],
        "legend": True,
    }
    assert csp_violations == []
