"""Security: HTTPS and HSTS, the content security policy, and the login lockout."""

import ipaddress
from datetime import timedelta

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import env_bool, env_int, env_list

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
# A known username is locked per (username, address); failures naming no account are
# counted per address (flywheel_site.login.lockout_parameters). The address is the real
# client's: X-Forwarded-For is read only from FLYWHEEL_TRUSTED_PROXIES.
AXES_LOCKOUT_PARAMETERS = "flywheel_site.login.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "flywheel_site.login.client_ip"
try:
    FLYWHEEL_TRUSTED_PROXIES = [
        ipaddress.ip_network(net, strict=False) for net in env_list("FLYWHEEL_TRUSTED_PROXIES", [])
    ]
except ValueError as error:
    raise ImproperlyConfigured(f"FLYWHEEL_TRUSTED_PROXIES: {error}") from None
# Sessions end after this much inactivity, and this long after the log-in whatever happens;
# destructive actions in the Django admin and django-rq ask for the password again when it
# was last given longer ago than FLYWHEEL_REAUTH_MINUTES.
FLYWHEEL_SESSION_IDLE_MINUTES = env_int("FLYWHEEL_SESSION_IDLE_MINUTES", 30, minimum=1)
FLYWHEEL_SESSION_MAX_HOURS = env_int("FLYWHEEL_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = FLYWHEEL_SESSION_MAX_HOURS * 3600
FLYWHEEL_REAUTH_MINUTES = env_int("FLYWHEEL_REAUTH_MINUTES", 10, minimum=1)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# User text (issue 18): answers and guidelines are rendered as Markdown
# (flywheel_site/text_render.py) only while rendering stays cheap: longer texts (in characters
# or lines), or texts with more "[" or more markup characters than these (or whose "[" make the
# parser read more markup looking for their "]" than the label scan allows), or nested (lists,
# quotes) deeper than the last, are shown escaped, as written.
FLYWHEEL_MARKDOWN_MAX_CHARS = env_int("FLYWHEEL_MARKDOWN_MAX_CHARS", 100_000, minimum=0)
FLYWHEEL_MARKDOWN_MAX_LINES = env_int("FLYWHEEL_MARKDOWN_MAX_LINES", 500, minimum=0)
FLYWHEEL_MARKDOWN_MAX_BRACKETS = env_int("FLYWHEEL_MARKDOWN_MAX_BRACKETS", 200, minimum=0)
FLYWHEEL_MARKDOWN_MAX_MARKUP = env_int("FLYWHEEL_MARKDOWN_MAX_MARKUP", 3_000, minimum=0)
FLYWHEEL_MARKDOWN_MAX_LABEL_SCAN = env_int("FLYWHEEL_MARKDOWN_MAX_LABEL_SCAN", 5_000, minimum=0)
FLYWHEEL_MARKDOWN_MAX_NESTING = env_int("FLYWHEEL_MARKDOWN_MAX_NESTING", 40, minimum=2, maximum=100)
# Hosts whose https images an answer may show; any other image is shown as its Markdown,
# so opening an answer never makes a reviewer's browser fetch anything.
FLYWHEEL_MARKDOWN_IMAGE_HOSTS = env_list("FLYWHEEL_MARKDOWN_IMAGE_HOSTS", [])
CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] += [
    f"https://{host}" for host in FLYWHEEL_MARKDOWN_IMAGE_HOSTS
]
