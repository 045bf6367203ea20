"""Django's own settings: secret, hosts, apps, middleware, templates, database, Redis and
RQ queues, passwords, static files, logging."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
)
from flywheel_site.logformat import LOG_FORMATS, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("FLYWHEEL_ALLOW_DEV_SECRET", False):
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for local development)")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "django_rq",
    # Its static files: the API docs page loads Swagger UI from here, not from a CDN.
    "ninja",
    "csp",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "axes",
    "curation",
    "review",
    "training",
    # After every app with history: its post_migrate hook chains their event tables.
    "flywheel_site.audit",
    # Last: it wires the apps above together (flywheel_site/apps.py).
    "flywheel_site.apps.FlywheelSiteConfig",
]

MIDDLEWARE = [
    # First: every response carries the request id and is counted and timed, even the
    # refusals of the middleware below.
    "flywheel_site.request_context.RequestIdMiddleware",
    "flywheel_site.prometheus.HttpMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "flywheel_site.middleware.PermissionsPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "flywheel_site.middleware.ApiJsonErrorsMiddleware",
    "flywheel_site.middleware.ApiRequestLimitMiddleware",
    "flywheel_site.middleware.ApiBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    # From here to BrowserEndMiddleware: what only pages need. /api/ requests skip it.
    "flywheel_site.middleware.BrowserMiddleware",
    # gunicorn serves no static files; whitenoise does, compressed and cached.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "flywheel_site.middleware.SessionTimeoutMiddleware",
    "flywheel_site.request_context.ActorMiddleware",
    "flywheel_site.middleware.AdminOnlyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "flywheel_site.middleware.BrowserEndMiddleware",
    # Attaches the acting user (or the API token) and the request path to every history
    # event.
    "pghistory.middleware.HistoryMiddleware",
    # Last, as django-axes requires: refuses logins while a client is locked out.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "flywheel_site.urls"
WSGI_APPLICATION = "flywheel_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "flywheel_site.context_processors.roles",
                "flywheel_site.context_processors.demo_loading",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:25432/flywheel")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("FLYWHEEL_DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A server or network gone while a query waits is noticed within about a minute, not the
# kernel's two hours, unless DATABASE_URL's own query string says otherwise.
for _name, _value in (
    ("keepalives", 1),
    ("keepalives_idle", 30),
    ("keepalives_interval", 10),
    ("keepalives_count", 3),
):
    DATABASES["default"]["OPTIONS"].setdefault(_name, _value)
# Web processes set it (scripts/gunicorn.conf.py): a threaded gunicorn worker has no
# request timeout, so a request waiting on a row lock would otherwise wait for good.
DB_LOCK_TIMEOUT_MS = env_int("FLYWHEEL_DB_LOCK_TIMEOUT_MS", 0, minimum=0, maximum=3_600_000)
if DB_LOCK_TIMEOUT_MS:
    DATABASES["default"]["OPTIONS"]["options"] = (
        DATABASES["default"]["OPTIONS"].get("options", "")
        + f" -c lock_timeout={DB_LOCK_TIMEOUT_MS}"
    ).strip()
# Lets two test runs on one machine use separate test databases.
DATABASES["default"]["TEST"] = {"NAME": env_str("FLYWHEEL_TEST_DATABASE", "test_flywheel")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:26379/0")
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (
        ("default", 600),
        ("curation", 900),
        ("training", 6 * 3600),
        ("webhooks", 300),
    )
}
# Audit events written by a worker name the job (flywheel_site/audit/rqjob.py), and jobs carry
# the id of the request that enqueued them, which workers log under (request_context.py).
RQ = {"JOB_CLASS": "flywheel_site.audit.rqjob.AuditedJob"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the app folders in development, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# text: a line a person reads; json: one object per line for a log pipeline (README "Monitoring").
FLYWHEEL_LOG_FORMAT = env_choice("FLYWHEEL_LOG_FORMAT", LOG_FORMATS, "text")
LOGGING = logging_config(
    log_format=FLYWHEEL_LOG_FORMAT, level=env_str("FLYWHEEL_LOG_LEVEL", "INFO")
)
