"""Webhooks (training.webhooks): links in payloads, delivery, retries, the SSRF guard."""

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import env_bool, env_float, env_int, env_list, env_str

# Absolute links in webhook payloads start with this (no trailing slash).
FLYWHEEL_PUBLIC_BASE_URL = env_str("FLYWHEEL_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Seconds to connect and to read each chunk of a receiver's answer: a slow or dead
# endpoint holds a webhook worker this long at most.
FLYWHEEL_WEBHOOK_TIMEOUT_S = env_float("FLYWHEEL_WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1, maximum=60)
FLYWHEEL_WEBHOOK_MAX_ATTEMPTS = env_int("FLYWHEEL_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
# Delay before retry n is base * 2**(n-1), capped: the shape of the backoff, not a
# deployment's choice (no variable; the number of attempts is).
FLYWHEEL_WEBHOOK_BACKOFF_BASE_S = 10.0
FLYWHEEL_WEBHOOK_BACKOFF_MAX_S = 3600.0
FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S = env_int("FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S", 10, minimum=1)
# Receivers on loopback, private, link-local or other non-public addresses are refused
# (SSRF) unless this is on, or their address is inside one of the allowed networks.
FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = env_bool("FLYWHEEL_WEBHOOK_ALLOW_PRIVATE", False)
try:
    FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = [
        ipaddress.ip_network(net, strict=False)
        for net in env_list("FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS", [])
    ]
except ValueError as error:
    raise ImproperlyConfigured(f"FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS: {error}") from None
