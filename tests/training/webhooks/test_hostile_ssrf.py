"""The webhook SSRF guard tests every address for being global, and every IPv4 address it
embeds; its refusal says nothing about what the host resolved to (issue 18, row 7)."""

import ipaddress

import pytest

from training.errors import TrainingError
from training.models import WebhookEndpoint
from training.webhooks import delivery as webhook_http
from training.webhooks import services as webhooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings):
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = False
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = []
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "http://[2002:a00:1::1]/",  # 6to4 wrapping 10.0.0.1
        "http://[fec0::1]/",  # deprecated site-local
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "http://[64:ff9b::7f00:1]/",  # NAT64 well-known prefix, 127.0.0.1 behind it
        "http://[64:ff9b::808:808]/",  # NAT64 to a public address: still a local translator
        "http://[64:ff9b:1::1]/",  # NAT64 local-use prefix
        "http://[::127.0.0.1]/",  # IPv4-compatible, deprecated
        "http://[::ffff:a9fe:a9fe]/",  # mapped 169.254.169.254
        "http://[fd00::1]/",  # unique local
        "http://[2001:db8::1]/",  # documentation
        "http://[100::1]/",  # discard-only
        "http://[2002:e000:1::]/",  # 6to4 wrapping multicast 224.0.0.1
        "http://[ff0e::1]/",  # global-scope multicast
    ],
)
def test_every_non_global_address_is_refused(strict, url):
    with pytest.raises(TrainingError) as refused:
        webhooks.webhook_endpoint_create(url=url, event_types=[webhooks.MODEL_GATED])
    assert "is not a public address: refused" in refused.value.message
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "2002:808:808::1"])
def test_public_addresses_and_6to4_of_a_public_one_pass(address):
    assert webhook_http.is_public(ipaddress.ip_address(address))


def test_the_refusal_does_not_say_what_the_host_resolves_to(strict):
    with pytest.raises(TrainingError) as refused:
        webhooks.webhook_endpoint_create(
            url="http://localhost:9/x", event_types=[webhooks.MODEL_GATED]
        )
    message = refused.value.message
    assert "localhost is not a public address" in message
    assert "127.0.0.1" not in message and "::1" not in message and "loopback" not in message


def test_an_unresolvable_host_gets_no_resolver_detail(strict):
    with pytest.raises(TrainingError) as refused:
        webhooks.webhook_endpoint_create(
            url="http://no-such-host.invalid/x", event_types=[webhooks.MODEL_GATED]
        )
    assert refused.value.message == "no-such-host.invalid does not resolve."
