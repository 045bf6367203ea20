import pytest
import redis

from curation.models import CurationRun
from curation.toxicity import PROFANITY_CHECK_NAME, TOXICITY_FALLBACK_WARNING
from flywheel_site import redis as fw_redis

pytestmark = pytest.mark.django_db


def test_it_reports_both_services_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_it_says_which_service_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    fw_redis.reset()
    response = client.get("/healthz")
    assert response.status_code == 200  # the database still takes ingest
    body = response.json()
    assert body["status"] == "degraded"
    assert body["down"] == ["redis"]
    assert body["checks"]["redis"]["detail"] == redis.ConnectionError.__name__


def test_the_offline_toxicity_fallback_is_a_warning_not_a_degraded_status(client):
    # What a fresh `make run` leaves: the demo's curation decided by the offline classifier.
    CurationRun.objects.create(
        trigger=CurationRun.Trigger.COMMAND, scorer=f"{PROFANITY_CHECK_NAME} 0.2"
    )
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["warnings"] == [TOXICITY_FALLBACK_WARNING]
