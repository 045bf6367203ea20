"""Security: HTTPS and HSTS, the content security policy, and the login lockout."""

from datetime import timedelta

from csp.constants import NONE, SELF

from flywheel_site.env import env_bool, env_int

# Served over TLS (directly, or behind a proxy whose X-Forwarded-Proto gunicorn trusts, see
# README): redirect http to https, send HSTS, and mark cookies Secure.
FLYWHEEL_HTTPS = env_bool("FLYWHEEL_HTTPS", False)
if FLYWHEEL_HTTPS:
    SECURE_SSL_REDIRECT = True
    # Load balancers and uptime checks probe plain http.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("FLYWHEEL_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only makes the host eligible for browsers' preload lists; nothing is listed until
    # someone submits the domain.
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
# Pages load scripts and styles from this site only: no inline script or style, no CDN, so
# injected markup cannot run. Templates keep styles in static/flywheel.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Failed logins (django-axes): after this many failures for one username from one
# address, that pair is locked out for the cool-off. Keyed on the pair so a
# stranger cannot lock a colleague out from elsewhere.
AXES_FAILURE_LIMIT = env_int("FLYWHEEL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLYWHEEL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
