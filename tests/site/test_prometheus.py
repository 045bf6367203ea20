"""GET /metrics (issue 20 §4): who may scrape, what it holds, and that it never reads the
interaction-sized tables."""

import ipaddress
import urllib.request
from datetime import timedelta

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from curation.models import CurationMetricDay, Source
from curation.services import api_token_create
from flywheel_site.prometheus import UNMATCHED
from flywheel_site.views import METRICS_ALL_SOURCES
from tests.support import factories
from tests.support.gunicorn import gunicorn_served
from tests.support.review import make_items, review
from tests.support.training import registered

pytestmark = pytest.mark.django_db


@pytest.fixture
def scraper():
    _, raw = api_token_create(
        source_name="monitoring", name="prometheus", scopes=["metrics", "all_sources"]
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_it_refuses_a_scrape_without_a_token_or_an_allowed_address():
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


def test_a_metrics_token_of_one_source_is_refused_figures_of_every_source():
    _, raw = api_token_create(source_name="shop", name="m", scopes=["metrics"])
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert response.json()["message"] == METRICS_ALL_SOURCES


def test_an_ingest_token_cannot_scrape(ingest_token):
    _, raw = ingest_token
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403  # a real token without the scope: named, not hidden
    assert "`metrics` scope" in response.json()["message"]


def test_an_allowed_address_scrapes_without_a_token(settings):
    settings.FLYWHEEL_METRICS_ALLOW_CIDRS = [ipaddress.ip_network("10.20.0.0/16")]
    assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.21.3.4").get("/metrics").status_code == 401
    # The header a client writes itself is not believed: no trusted proxy is configured.
    spoofed = Client(REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="10.20.3.4")
    assert spoofed.get("/metrics").status_code == 401


def test_http_requests_are_counted_by_route_not_by_path(scraper, admin):
    before = scrape(scraper)
    browser = Client()
    browser.force_login(admin)
    for name in ("alpha", "beta", "gamma"):
        browser.get(f"/datasets/{name}/")
    Client().get("/no/such/page/12345")
    after = scrape(scraper)
    key = ("route", "/datasets/<slug:name>/")
    counted = {
        labels: value - before.get((name, labels), 0)
        for (name, labels), value in after.items()
        if name == "flywheel_http_requests_total"
        and key in labels
        # Other tests in this process may have counted the route under other statuses.
        and value != before.get((name, labels), 0)
    }
    assert counted == {(("method", "GET"), key, ("status", "404")): 3}
    unmatched = (
        "flywheel_http_requests_total",
        (("method", "GET"), ("route", UNMATCHED), ("status", "404")),
    )
    assert after[unmatched] - before.get(unmatched, 0) == 1
    assert not any("alpha" in str(labels) for _, labels in after)
    count = ("flywheel_http_request_duration_seconds_count", (("method", "GET"), key))
    assert after[count] - before.get(count, 0) == 3


def test_ingested_events_are_counted_by_kind_and_status(
    scraper, api, django_capture_on_commit_callbacks
):
    def counts() -> dict:
        return {
            labels: value
            for (name, labels), value in scrape(scraper).items()
            if name == "flywheel_events_ingested_total"
        }

    before = counts()
    # Counted once committed: the test's transaction never commits, so run the callbacks.
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/interactions", factories.interaction("m1"))
        api.post("/api/v1/interactions", factories.interaction("m1"))
        api.post(
            "/api/v1/batch",
            {"interactions": [factories.interaction("m2"), {"event_id": "broken"}], "feedback": []},
        )
        api.post("/api/v1/feedback", factories.feedback("m1", "f1", kind="thumbs_up"))
    after = counts()
    grown = {
        dict(labels)["kind"] + " " + dict(labels)["status"]: after[labels] - before.get(labels, 0)
        for labels in after
        if after[labels] != before.get(labels, 0)
    }
    assert grown == {
        "interaction created": 2,
        "interaction duplicate": 1,
        "interaction rejected": 1,
        "feedback created": 1,
    }


def test_the_queue_reviews_and_jobs_are_read_at_scrape_time(scraper, annotator):
    items = make_items(3, kind="preference") + make_items(1, kind="sft")
    review(items[0], annotator, "approve")
    django_rq.get_queue("webhooks", commit_mode="auto").enqueue(
        "builtins.print", "queued, never run"
    )
    got = scrape(scraper)
    assert got[("flywheel_review_queue_depth", (("kind", "preference"),))] == 2
    assert got[("flywheel_review_queue_depth", (("kind", "sft"),))] == 1
    assert got[("flywheel_review_queue_oldest_age_seconds", (("kind", "sft"),))] >= 0
    assert got[("flywheel_reviews_total", ())] == 1
    assert got[("flywheel_review_outcomes_total", (("decision", "approved"),))] == 1
    assert got[("flywheel_rq_queue_length", (("queue", "webhooks"),))] == 1
    assert got[("flywheel_rq_failed_jobs", (("queue", "webhooks"),))] == 0
    assert got[("flywheel_redis_up", ())] == 1


def test_runs_models_and_experiments_are_read_at_scrape_time(scraper, version):
    registered(version, status="promoted", name="support-v1", serving_name="bot-v1")
    got = scrape(scraper)
    assert got[("flywheel_training_runs", (("status", "succeeded"),))] == 1
    assert got[("flywheel_training_runs", (("status", "failed"),))] == 0
    assert (
        got[("flywheel_model_current_info", (("model", "support-v1"), ("serving_name", "bot-v1")))]
        == 1
    )
    assert got[("flywheel_model_versions", (("status", "promoted"),))] == 1
    assert got[("flywheel_experiments", (("state", "running"),))] == 0


def test_before_any_promotion_the_base_model_is_current(scraper):
    got = scrape(scraper)
    base = (("model", "base"), ("serving_name", settings.FLYWHEEL_BASE_SERVING_NAME))
    assert got[("flywheel_model_current_info", base)] == 1


def test_curation_lag_is_a_cumulative_histogram_of_the_rollup_buckets(scraper):
    source = Source.objects.create(name="lagged")
    day = timezone.now().date() - timedelta(days=3)
    for key, n, shard in (("5", 2, 0), ("5", 1, 3), ("60", 4, 0), ("inf", 1, 0)):
        CurationMetricDay.objects.create(
            day=day,
            source_id=source.pk,
            task_type="t",
            model="m",
            metric="lag",
            key=key,
            shard=shard,
            n=n,
        )
    got = scrape(scraper)
    bucket = "flywheel_curation_lag_seconds_bucket"
    assert got[(bucket, (("le", "1.0"),))] == 0
    assert got[(bucket, (("le", "5.0"),))] == 3
    assert got[(bucket, (("le", "30.0"),))] == 3
    assert got[(bucket, (("le", "60.0"),))] == 7
    assert got[(bucket, (("le", "604800.0"),))] == 7
    assert got[(bucket, (("le", "+Inf"),))] == 8
    assert got[("flywheel_curation_lag_seconds_count", ())] == 8


def test_a_scrape_reads_no_interaction_feedback_or_candidate_row(scraper, api):
    api.post("/api/v1/interactions", factories.interaction("q1"))
    make_items(2)
    with CaptureQueriesContext(connection) as queries:
        scrape(scraper)
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert "review_reviewitem" in read  # the queue is read, through its partial index
    for table in ("curation_interaction", "curation_feedback", "curation_candidate"):
        assert f'"{table}"' not in read and f" {table} " not in read, table


def test_a_scrape_still_answers_when_redis_is_down(scraper, settings):
    from flywheel_site import redis as fw_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    fw_redis.reset()
    got = scrape(scraper)
    assert got[("flywheel_redis_up", ())] == 0
    assert not any(name == "flywheel_rq_queue_length" for name, _ in got)
    assert ("flywheel_reviews_total", ()) in got


@pytest.mark.slow
def test_under_gunicorn_a_scrape_adds_up_every_workers_counters(tmp_path):
    """Sync workers take turns on the shared socket: whichever answers the scrape, every
    request any worker served is in it."""
    database = settings.DATABASES["default"]
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "FLYWHEEL_METRICS_ALLOW_CIDRS": "127.0.0.1/32",
        # The test database: its tables exist, and the scrape reads them.
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}",
    }
    with gunicorn_served(workers=2, env=env) as base:
        # The socket queues connections until a worker takes them: no polling needed.
        before = samples(_get(f"{base}/metrics"))
        for _ in range(30):
            _get(f"{base}/healthz")
        after = samples(_get(f"{base}/metrics"))
    healthz = (
        "flywheel_http_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    assert after[healthz] - before.get(healthz, 0) == 30
    scrapes = (
        "flywheel_http_requests_total",
        (("method", "GET"), ("route", "/metrics"), ("status", "200")),
    )
    assert after[scrapes] == 1  # the first scrape, counted once it was answered
    assert list(tmp_path.glob("*.db")), "multiprocess mode wrote no files"


def _get(url: str) -> str:
    return urllib.request.urlopen(url, timeout=60).read().decode()  # noqa: S310 (our server)
