"""The dashboard's audit card: the last verify_audit result, broken or not."""

import pytest

from flywheel_site.audit.models import AuditCheck

pytestmark = pytest.mark.django_db


def test_a_broken_chain_shows_its_first_broken_link(client, curator):
    AuditCheck.objects.create(ok=True, links=3)
    AuditCheck.objects.create(
        ok=False, links=3, problems=["link #2 (curation_sourceevent #2): the event row was edited"]
    )
    client.force_login(curator)
    html = client.get("/").content.decode()
    assert 'id="audit-chain"' in html
    assert "First broken link: link #2 (curation_sourceevent #2): the event row was edited" in html


def test_a_verified_chain_shows_its_counts(client, curator):
    AuditCheck.objects.create(ok=True, links=12, redactions=2, versions=1)
    client.force_login(curator)
    html = client.get("/").content.decode()
    assert "12 links, 2 redactions, 1 dataset version." in html


def test_no_check_yet_says_so(client, curator):
    client.force_login(curator)
    assert "Not verified yet" in client.get("/").content.decode()


def test_admins_get_links_to_the_audit_log_and_erasure(client, admin, curator):
    client.force_login(admin)
    html = client.get("/").content.decode()
    assert 'href="/audit/log/"' in html and 'href="/audit/erase/"' in html
    client.force_login(curator)
    assert 'id="audit-links"' not in client.get("/").content.decode()
