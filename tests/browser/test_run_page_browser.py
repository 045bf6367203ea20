"""The training run page while the run trains (issue 22 §2): the loss chart draws the new
points of each 2 s poll without a reload, with no Content-Security-Policy violation, the log
box follows its newest line, and axe finds no serious violation on the page as it polls."""

from django.db.models import F, Value
from django.db.models.functions import Concat

from tests.support.browser import axe_serious
from training.models import TrainingRun

CHART = "(window.Chart && Chart.getChart(document.querySelector('canvas.loss-canvas')))"
POINTS = f"n => {{ const c = {CHART}; return Boolean(c) && c.data.datasets[0].data.length === n; }}"
AT_END = """() => { const log = document.querySelector('pre.log');
  return log.scrollHeight > log.clientHeight
    && log.scrollTop + log.clientHeight >= log.scrollHeight - 2; }"""


def _log(first: int, last: int) -> str:
    return "".join(f"step {n}/30 loss=0.{9000 - n}\n" for n in range(first, last + 1))


def test_the_run_page_draws_each_poll_follows_the_log_and_breaks_no_policy(
    browser_page, live_server, admin, run, csp_violations
):
    TrainingRun.objects.filter(pk=run.pk).update(log=_log(1, 12))
    page = browser_page(admin)
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    page.wait_for_function(POINTS, arg=3)

    TrainingRun.objects.filter(pk=run.pk).update(
        progress_step=24,
        loss_curve=[*run.loss_curve, [18, 0.47], [24, 0.41]],
        eval_loss_curve=[[24, 0.52]],
        log=Concat(F("log"), Value(_log(13, 24))),
    )
    page.wait_for_function(POINTS, arg=5, timeout=15_000)
    page.wait_for_function(AT_END)
    newest = page.evaluate("() => document.querySelector('pre.log').textContent.trim()")
    evals = page.evaluate(f"() => {CHART}.data.datasets[1].data.length")

    assert newest.splitlines()[-1].startswith("step 24/30") and evals == 1
    assert csp_violations == []

    page = browser_page(admin, bypass_csp=True)
    page.goto(f"{live_server.url}/training/runs/{run.pk}/")
    page.wait_for_function(POINTS, arg=5)
    page.wait_for_timeout(2500)  # one poll swapped in
    assert axe_serious(page) == []
