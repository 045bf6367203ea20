"""The network side of webhooks: which receiver addresses are allowed (the SSRF guard), and
one signed POST to an address that was checked.

The guard resolves the host once and the request connects to that very address (urllib3
pool opened on the IP, with the Host header and, for https, the SNI and certificate name
set to the host): a DNS answer that changes between the check and the connection (DNS
rebinding) cannot steer the request elsewhere. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

SCHEMES = ("http", "https")
ERR_SCHEME = "A webhook URL must start with http:// or https://."
ERR_HOST = "A webhook URL needs a host name."
ERR_CREDENTIALS = "Put no user name or password in a webhook URL; the signature authenticates."
# Neither message says what the host resolved to, or why it failed to: the URL's author
# should not learn the internal network from it. The log holds the detail.
ERR_RESOLVE = "{host} does not resolve."
ERR_REFUSED = (
    "{host} is not a public address: refused (set FLYWHEEL_WEBHOOK_ALLOW_PRIVATE "
    "or FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS to allow it)."
)
USER_AGENT = "Flywheel-Webhooks/1"
logger = logging.getLogger(__name__)


class Refused(ValueError):
    """The URL may not be called; the message says why."""


@dataclass
class Target:
    scheme: str
    host: str
    port: int
    path: str
    host_header: str


@dataclass
class Result:
    ok: bool
    status_code: int | None
    excerpt: str
    error: str
    latency_ms: int


def target_of(url: str) -> Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(str(error)) from None
    if parts.scheme not in SCHEMES:
        raise Refused(ERR_SCHEME)
    if not parts.hostname:
        raise Refused(ERR_HOST)
    if parts.username is not None or parts.password is not None:
        raise Refused(ERR_CREDENTIALS)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
        host_header=parts.netloc,
    )


# Ranges Python's is_global (3.11) still calls global, though they reach no public host:
# deprecated site-local, the NAT64 prefixes (a local translator reaches any IPv4 behind it)
# and IPv4-compatible addresses.
_NOT_PUBLIC_V6 = tuple(
    ipaddress.ip_network(net) for net in ("fec0::/10", "64:ff9b::/96", "64:ff9b:1::/48", "::/96")
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries: mapped, 6to4 and both Teredo ends."""
    embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    return [v4 for v4 in embedded if v4 is not None]


def _global(ip) -> bool:
    # Python 3.11 calls multicast (224.0.0.1, ff0e::1) global.
    return ip.is_global and not ip.is_multicast


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip`, and every IPv4 address it embeds, is globally reachable."""
    if ip.version == 6:
        if any(ip in net for net in _NOT_PUBLIC_V6):
            return False
        if not all(_global(v4) for v4 in _embedded_ipv4(ip)):
            return False
    return _global(ip)


def address_allowed(ip) -> bool:
    """Whether the receiver may be at `ip`."""
    if is_public(ip) or settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE:
        return True
    return any(
        ip in net for net in settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS if ip.version == net.version
    )


def resolve_checked(target: Target) -> str:
    """The address to connect to: the host resolved once, every address it has checked
    (one private address among public ones refuses the host)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        logger.info("webhook host %s does not resolve: %s", target.host, error)
        raise Refused(ERR_RESOLVE.format(host=target.host)) from None
    addresses = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0].split("%")[0])
        if not address_allowed(ip):
            logger.info("webhook host %s refused: it resolves to %s", target.host, ip)
            raise Refused(ERR_REFUSED.format(host=target.host))
        addresses.append(str(ip))
    if not addresses:
        raise Refused(ERR_RESOLVE.format(host=target.host))
    return addresses[0]


def url_check(url: str) -> None:
    """Raise Refused unless `url` is an http(s) URL whose host resolves to allowed addresses."""
    resolve_checked(target_of(url))


def _pool(target: Target, ip: str, timeout: urllib3.Timeout):
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            ip,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(ip, target.port, timeout=timeout, retries=False, maxsize=1)


def _read_until(response, *, limit: int, deadline: float) -> bytes:
    """At most `limit` bytes, and no read begun after the deadline: a receiver that drips
    its answer a byte at a time cannot hold the worker (each read waits at most the
    timeout; the job's own timeout is the last resort)."""
    chunks, size = [], 0
    while size < limit and time.monotonic() < deadline:
        chunk = response.read1(min(256, limit - size), decode_content=False)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _text(raw: bytes, limit: int) -> str:
    return raw.decode("utf-8", errors="replace")[:limit]


def post(*, url: str, body: bytes, headers: dict[str, str], excerpt_max: int) -> Result:
    """POST once, never raising: a refused address, a timeout or a connection error is a
    failed Result with the error. Reads at most `excerpt_max` bytes of the answer."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = target_of(url)
        ip = resolve_checked(target)
    except Refused as error:
        return Result(False, None, "", str(error)[:excerpt_max], elapsed())
    seconds = settings.FLYWHEEL_WEBHOOK_TIMEOUT_S
    pool = _pool(target, ip, urllib3.Timeout(connect=seconds, read=seconds))
    all_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=all_headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            raw = _read_until(response, limit=excerpt_max, deadline=started + 2 * seconds)
        finally:
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as error:
        return Result(False, None, "", repr(error)[:excerpt_max], elapsed())
    finally:
        pool.close()
    status = response.status
    ok = 200 <= status < 300
    return Result(ok, status, _text(raw, excerpt_max), "", elapsed())
