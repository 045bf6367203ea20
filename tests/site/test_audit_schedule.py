"""verify_audit on its schedule: the cron entry runs it through a real RQ worker, the audit
chain and the dataset manifests' chain are verified in the same check, and a break found
there shows on the dashboard and fires one webhook event. Transactional: audit links are
appended at commit."""

import django_rq
import pytest
from django.conf import settings
from django.db import connection

from flywheel_site.audit.jobs import audit_verify_scheduled
from flywheel_site.audit.models import AuditCheck
from tests.support import training as th
from tests.support.jobs import run_jobs
from training.models import GoldPair, WebhookEndpoint, WebhookEvent
from training.webhooks.services import AUDIT_CHAIN_BROKEN, secret_generate

pytestmark = pytest.mark.django_db(transaction=True)


def scheduled_check() -> AuditCheck:
    django_rq.get_queue("default").enqueue(audit_verify_scheduled)
    run_jobs("default")
    return AuditCheck.objects.latest("pk")


def test_the_cron_entry_runs_verify_audit_on_its_interval():
    from rq import cron

    import flywheel_site.cron  # noqa: F401 (registers the jobs)

    [entry] = [e for e in cron._job_data_registry if e["name"] == "audit-verify"]
    assert (entry["func"], entry["queue_name"]) == (audit_verify_scheduled, "default")
    assert entry["interval"] == settings.FLYWHEEL_AUDIT_VERIFY_INTERVAL_S


def test_a_tampered_dataset_version_breaks_the_scheduled_check_dashboard_and_webhook(client, admin):
    WebhookEndpoint.objects.create(
        url="https://example.com/hook", event_types=[AUDIT_CHAIN_BROKEN], secret=secret_generate()
    )
    version = th.frozen_version(admin, n=2)
    intact = scheduled_check()
    assert intact.ok and intact.links > 0 and intact.versions == 1, intact.problems
    pair = GoldPair.objects.filter(memberships__version=version).first()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE training_goldpair SET chosen = 'poisoned' WHERE id = %s", [pair.pk]
            )
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")

    broken = scheduled_check()
    scheduled_check()  # still broken: no second event

    assert not broken.ok and broken.versions == 1
    assert broken.problems[0].startswith(f"{version}: ")
    assert f"#{pair.pk}" in broken.problems[0]
    [event] = WebhookEvent.objects.filter(type=AUDIT_CHAIN_BROKEN)
    assert event.data["first_problem"] == broken.problems[0]
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert f"First broken link: {broken.problems[0]}" in html
