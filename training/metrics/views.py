"""The flywheel dashboard: the home page of curators and admins. One selector call
(`training.metrics.selectors.flywheel_metrics`), rendered as charts (static/dashboard.js on the
vendored Chart.js) and as the same figures in tables, which work without JavaScript."""

from datetime import UTC, date, datetime, time
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from flywheel_site.access import CURATOR, role_required
from flywheel_site.audit.selectors import audit_status
from flywheel_site.http import render_page
from review.selectors import filter_agreement
from training.metrics.forms import DashboardForm
from training.metrics.selectors import WINDOWS, filter_choices, flywheel_metrics, table_rows
from training.registry.selectors import monitor_alerts_open

PAGE = "training/dashboard.html"


@role_required(CURATOR)
def dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.GET)
    # A hostile or mistyped URL shows the default window with the form's errors, as a 400.
    valid = form.is_valid()
    query = form.query()
    metrics = flywheel_metrics(**query)
    filters = {k: query[k] for k in ("source", "task_type", "model") if query[k]}
    if query["today"]:
        filters["end"] = query["today"].isoformat()
    context = {
        "filter_qs": urlencode(filters),
        "form": form,
        "query": query,
        "windows": WINDOWS,
        "custom": query["days"] not in WINDOWS,
        "choices": filter_choices(),
        "metrics": metrics,
        "rows": table_rows(metrics),
        # After a rollout the monitor watches the current model (training.registry.experiments);
        # the calibration figures come from the audit sample (review.calibration).
        "alerts": monitor_alerts_open(),
        "audit": audit_status(),
        "agreement": filter_agreement(
            since=datetime.combine(
                date.fromisoformat(metrics["window"]["start"]), time.min, tzinfo=UTC
            )
        ),
    }
    return render_page(request, PAGE, "dashboard-body", context, status=200 if valid else 400)
