"""What stands between a password guesser and an account, and how long a session lasts:
the client address django-axes keys lockouts on, which parameters it locks, and the
session clock (idle, absolute, and the recent log-in destructive admin actions ask for)."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.urls import reverse

# Session keys: when this session logged in and last proved its password, and when it was
# last seen (epoch seconds).
LOGIN_AT = "flywheel_login_at"
AUTH_AT = "flywheel_auth_at"
SEEN_AT = "flywheel_seen_at"
# Seen-at is written at most this often, so a busy reviewer does not write the session on
# every request.
SEEN_RESOLUTION_S = 60


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(ip) -> bool:
    return ip is not None and any(
        ip in net for net in settings.FLYWHEEL_TRUSTED_PROXIES if ip.version == net.version
    )


def client_ip(request) -> str:
    """The address of whoever sent the request. X-Forwarded-For is read only when the
    connection comes from a listed proxy, and then from the right: each hop a trusted proxy
    appended is skipped, and the first address no trusted proxy owns is the client (what a
    client writes into the header itself sits to the left of it and is never believed)."""
    remote = request.META.get("REMOTE_ADDR", "")
    if not _trusted(_address(remote)):
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            # A hop no proxy would write: stop at the last address a trusted proxy vouched for.
            return remote
        if not _trusted(ip):
            return str(ip)
        remote = str(ip)
    return remote


def lockout_parameters(request_or_attempt, credentials=None) -> list:
    """django-axes: a known username is locked per (username, address), so nobody elsewhere
    can lock a colleague out; failures naming no account are counted per address, so
    guessing usernames from one address is throttled too."""
    username = (credentials or {}).get("username") or getattr(request_or_attempt, "username", "")
    if username and get_user_model().objects.filter(username=username).exists():
        return [["username", "ip_address"]]
    return ["ip_address"]


def session_expired(session, *, now: float | None = None) -> bool:
    """Whether a logged-in session has been idle too long or lived too long. Records the
    log-in time on first sight and the last activity otherwise."""
    now = time.time() if now is None else now
    login_at = session.get(LOGIN_AT)
    if login_at is None:
        session[LOGIN_AT] = session[AUTH_AT] = session[SEEN_AT] = now
        return False
    seen_at = session.get(SEEN_AT, login_at)
    if now - seen_at > settings.FLYWHEEL_SESSION_IDLE_MINUTES * 60:
        return True
    if now - login_at > settings.FLYWHEEL_SESSION_MAX_HOURS * 3600:
        return True
    if now - seen_at >= SEEN_RESOLUTION_S:
        session[SEEN_AT] = now
    return False


def recently_authenticated(session, *, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    auth_at = session.get(AUTH_AT)
    return auth_at is not None and now - auth_at <= settings.FLYWHEEL_REAUTH_MINUTES * 60


def reauth_redirect(target: str):
    """To the password prompt, then back to `target` (a path on this site)."""
    return redirect(f"{reverse('reauth')}?{urlencode({'next': target})}")


def reauthenticated(session) -> None:
    session[AUTH_AT] = session[SEEN_AT] = time.time()
