"""Flywheel settings: one module, every value from the environment.

Each variable is documented in README.md ("Settings"). Bad values raise
ImproperlyConfigured at start-up.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    env_weights,
)

BASE_DIR = Path(__file__).resolve().parent.parent

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
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "flywheel_site.middleware.PermissionsPolicyMiddleware",
    "flywheel_site.middleware.ApiJsonErrorsMiddleware",
    "flywheel_site.middleware.ApiBodyLimitMiddleware",
    # gunicorn serves no static files; whitenoise does, compressed and cached.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "flywheel_site.middleware.StaffOnlyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Attaches the acting user and request path to every history event.
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
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:25432/flywheel")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env_int("FLYWHEEL_DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
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
# Short socket timeouts: when Redis is down, ingest must notice fast and carry on.
REDIS_SOCKET_TIMEOUT = env_float("FLYWHEEL_REDIS_SOCKET_TIMEOUT", 0.5, minimum=0.01)

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("FLYWHEEL_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Security ----------------------------------------------------------------------
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
# Security (end) ----------------------------------------------------------------

# --- Flywheel knobs -----------------------------------------------------------
# Ingest
FLYWHEEL_INGEST_MAX_BATCH = env_int("FLYWHEEL_INGEST_MAX_BATCH", 1000, minimum=1)
FLYWHEEL_INGEST_MAX_BODY_BYTES = env_int(
    "FLYWHEEL_INGEST_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024
)
# Requests per token per window; 0 turns the limiter off.
FLYWHEEL_INGEST_RATE_LIMIT = env_int("FLYWHEEL_INGEST_RATE_LIMIT", 1200, minimum=0)
FLYWHEEL_INGEST_RATE_WINDOW_S = env_int("FLYWHEEL_INGEST_RATE_WINDOW_S", 60, minimum=1)
FLYWHEEL_METADATA_MAX_BYTES = env_int("FLYWHEEL_METADATA_MAX_BYTES", 16 * 1024, minimum=2)
FLYWHEEL_TEXT_MAX_CHARS = env_int("FLYWHEEL_TEXT_MAX_CHARS", 200_000, minimum=1)
# occurred_at is accepted from January 1 of this year to now + this many seconds.
FLYWHEEL_INGEST_EARLIEST_YEAR = env_int(
    "FLYWHEEL_INGEST_EARLIEST_YEAR", 2000, minimum=1971, maximum=9000
)
FLYWHEEL_INGEST_MAX_FUTURE_S = env_int(
    "FLYWHEEL_INGEST_MAX_FUTURE_S", 86400, minimum=0, maximum=10 * 366 * 86400
)
# Key for the HMAC of end-user ids; defaults to SECRET_KEY. Changing it breaks
# correlation of users across the change.
FLYWHEEL_USER_HASH_KEY = env_str("FLYWHEEL_USER_HASH_KEY", "") or SECRET_KEY
# Django's own cap on request bodies is the ingest body limit, so an oversized
# body is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = FLYWHEEL_INGEST_MAX_BODY_BYTES

# Curation
FLYWHEEL_SAMPLING_KEY = env_str("FLYWHEEL_SAMPLING_KEY", "") or SECRET_KEY
FLYWHEEL_CURATION_CHUNK = env_int("FLYWHEEL_CURATION_CHUNK", 200, minimum=1)
FLYWHEEL_CURATION_JOB_TIMEOUT_S = env_int("FLYWHEEL_CURATION_JOB_TIMEOUT_S", 900, minimum=10)
FLYWHEEL_CURATION_RETRIES = env_int("FLYWHEEL_CURATION_RETRIES", 3, minimum=0)
# Candidates explorer: a bulk action on more than INLINE candidates runs as a job;
# one on more than MAX is refused (narrow the filter).
FLYWHEEL_BULK_ACTION_INLINE = env_int("FLYWHEEL_BULK_ACTION_INLINE", 200, minimum=1)
FLYWHEEL_BULK_ACTION_MAX = env_int("FLYWHEEL_BULK_ACTION_MAX", 100_000, minimum=1)
# Failure testing only: seconds to sleep inside each curation transaction.
FLYWHEEL_CURATION_CHUNK_PAUSE_S = env_float("FLYWHEEL_CURATION_CHUNK_PAUSE_S", 0.0, minimum=0)
FLYWHEEL_SWEEP_INTERVAL_S = env_int("FLYWHEEL_SWEEP_INTERVAL_S", 60, minimum=5)
FLYWHEEL_SWEEP_GRACE_S = env_int("FLYWHEEL_SWEEP_GRACE_S", 30, minimum=0)
FLYWHEEL_SWEEP_LIMIT = env_int("FLYWHEEL_SWEEP_LIMIT", 20_000, minimum=1)
# Toxicity: Detoxify model name, or a local checkpoint and HF config directory
# for machines without internet. Without a loadable model candidates are held,
# unless the lighter alt-profanity-check fallback is allowed.
FLYWHEEL_TOXICITY_MODEL = env_str("FLYWHEEL_TOXICITY_MODEL", "original")
FLYWHEEL_TOXICITY_CHECKPOINT = env_str("FLYWHEEL_TOXICITY_CHECKPOINT", "")
FLYWHEEL_TOXICITY_CONFIG_DIR = env_str("FLYWHEEL_TOXICITY_CONFIG_DIR", "")
FLYWHEEL_TOXICITY_ALLOW_FALLBACK = env_bool("FLYWHEEL_TOXICITY_ALLOW_FALLBACK", False)
FLYWHEEL_TOXICITY_BATCH_SIZE = env_int("FLYWHEEL_TOXICITY_BATCH_SIZE", 32, minimum=1)
if FLYWHEEL_TOXICITY_MODEL not in ("original", "unbiased", "multilingual"):
    raise ImproperlyConfigured(
        "FLYWHEEL_TOXICITY_MODEL must be original, unbiased or multilingual, "
        f"got {FLYWHEEL_TOXICITY_MODEL!r}"
    )
# The optional LLM judge (curation/judge.py): an OpenAI-compatible chat completions
# endpoint (base URL, e.g. http://127.0.0.1:8000/v1). Unset, a policy that enables the
# llm_judge filter holds its candidates: the judge fails closed.
FLYWHEEL_JUDGE_URL = env_str("FLYWHEEL_JUDGE_URL", "")
FLYWHEEL_JUDGE_MODEL = env_str("FLYWHEEL_JUDGE_MODEL", "judge")
FLYWHEEL_JUDGE_API_KEY = env_str("FLYWHEEL_JUDGE_API_KEY", "")
FLYWHEEL_JUDGE_TIMEOUT_S = env_float("FLYWHEEL_JUDGE_TIMEOUT_S", 30.0, minimum=0.1)
FLYWHEEL_JUDGE_CONCURRENCY = env_int("FLYWHEEL_JUDGE_CONCURRENCY", 4, minimum=1, maximum=64)
FLYWHEEL_JUDGE_MAX_RETRIES = env_int("FLYWHEEL_JUDGE_MAX_RETRIES", 2, minimum=0, maximum=10)
FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S = env_float("FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S", 10.0, minimum=0)

# Review ------------------------------------------------------------------------
# Minutes an annotator holds an item; renewed while they are active on it.
FLYWHEEL_REVIEW_LEASE_MINUTES = env_int("FLYWHEEL_REVIEW_LEASE_MINUTES", 10, minimum=1)
# The order the "all" queue serves kinds in: weights per kind, so one kind
# cannot flood the others (review.queues checks the names at start-up).
FLYWHEEL_REVIEW_MIX = env_weights("FLYWHEEL_REVIEW_MIX", "preference:3,sft:1,needs_answer:1")
# Distinct annotators who skip an item before it goes to a curator.
FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = env_int("FLYWHEEL_REVIEW_SKIPS_TO_CURATOR", 3, minimum=1)
# Failed logins (django-axes): after this many failures for one username from one
# address, that pair is locked out for the cool-off. Keyed on the pair so a
# stranger cannot lock a colleague out from elsewhere.
AXES_FAILURE_LIMIT = env_int("FLYWHEEL_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLYWHEEL_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Review (end) ------------------------------------------------------------------

# Training ----------------------------------------------------------------------
# Where frozen dataset versions are exported, one directory per version.
FLYWHEEL_EXPORT_DIR = Path(env_str("FLYWHEEL_EXPORT_DIR", "") or BASE_DIR / ".run" / "exports")
# Training (end) ----------------------------------------------------------------

# Training runs -------------------------------------------------------------------
# Trained adapters go under FLYWHEEL_MODELS_DIR/runs. The base model is a local directory
# (config.json and tokenizer files): nothing is downloaded at run time. `load_demo` builds a
# tiny one at the default path.
FLYWHEEL_MODELS_DIR = Path(env_str("FLYWHEEL_MODELS_DIR", "") or BASE_DIR / ".run" / "models")
FLYWHEEL_BASE_MODEL = Path(env_str("FLYWHEEL_BASE_MODEL", "") or FLYWHEEL_MODELS_DIR / "base")
FLYWHEEL_TRAINER = env_str("FLYWHEEL_TRAINER", "builtin")
if FLYWHEEL_TRAINER not in ("builtin", "external"):
    raise ImproperlyConfigured(
        f"FLYWHEEL_TRAINER must be builtin or external, got {FLYWHEEL_TRAINER!r}"
    )
# Split like a shell line (no shell runs it); {export_dir} and {output_dir} are replaced.
FLYWHEEL_EXTERNAL_TRAINER_COMMAND = env_str("FLYWHEEL_EXTERNAL_TRAINER_COMMAND", "")
if FLYWHEEL_TRAINER == "external" and not FLYWHEEL_EXTERNAL_TRAINER_COMMAND.strip():
    raise ImproperlyConfigured("FLYWHEEL_TRAINER=external needs FLYWHEEL_EXTERNAL_TRAINER_COMMAND")
FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S = env_int(
    "FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S", 6 * 3600, minimum=1
)
# The RQ timeout of a training job; a run still "running" this long after it started is
# marked failed by the periodic check (its worker died).
FLYWHEEL_TRAINING_JOB_TIMEOUT_S = env_int("FLYWHEEL_TRAINING_JOB_TIMEOUT_S", 6 * 3600, minimum=60)
FLYWHEEL_TRAINING_STEPS = env_int("FLYWHEEL_TRAINING_STEPS", 200, minimum=1)
FLYWHEEL_TRAINING_BATCH_SIZE = env_int("FLYWHEEL_TRAINING_BATCH_SIZE", 8, minimum=1)
FLYWHEEL_TRAINING_LEARNING_RATE = env_float(
    "FLYWHEEL_TRAINING_LEARNING_RATE", 5e-3, minimum=1e-9, maximum=1.0
)
FLYWHEEL_TRAINING_MAX_LENGTH = env_int("FLYWHEEL_TRAINING_MAX_LENGTH", 256, minimum=16)
FLYWHEEL_TRAINING_LORA_R = env_int("FLYWHEEL_TRAINING_LORA_R", 8, minimum=1)
FLYWHEEL_TRAINING_BETA = env_float("FLYWHEEL_TRAINING_BETA", 0.1, minimum=1e-6)
# The eval gate: the lower bound of the interval of the candidate's improvement over the
# current model on this metric must reach the margin (training.paired).
FLYWHEEL_GATE_METRIC = env_str("FLYWHEEL_GATE_METRIC", "normalised_accuracy")
if FLYWHEEL_GATE_METRIC not in ("normalised_accuracy", "implicit_reward_accuracy", "reward_margin"):
    raise ImproperlyConfigured(
        "FLYWHEEL_GATE_METRIC must be normalised_accuracy, implicit_reward_accuracy or "
        f"reward_margin, got {FLYWHEEL_GATE_METRIC!r}"
    )
FLYWHEEL_GATE_MARGIN = env_float("FLYWHEEL_GATE_MARGIN", 0.02, minimum=0)
# Fewer held-out pairs than this and the gate refuses to judge (training.paired): on a handful
# of pairs the interval of the difference is too wide to tell anything.
FLYWHEEL_GATE_MIN_EVAL_PAIRS = env_int("FLYWHEEL_GATE_MIN_EVAL_PAIRS", 50, minimum=1)
# Promote a candidate that passes the gate without waiting for an admin.
FLYWHEEL_AUTO_PROMOTE = env_bool("FLYWHEEL_AUTO_PROMOTE", False)
# How often the periodic job checks each dataset's threshold (and re-queues lost runs).
FLYWHEEL_TRAIN_TRIGGER_INTERVAL_S = env_int("FLYWHEEL_TRAIN_TRIGGER_INTERVAL_S", 300, minimum=10)
# Canary experiments and the monitor (training.experiments) ----------------------
# What the serving application calls the base model (the route's answer when no model is
# promoted). Trained models serve under their own serving name.
FLYWHEEL_BASE_SERVING_NAME = env_str("FLYWHEEL_BASE_SERVING_NAME", "base")
# Promotion starts a canary experiment; off: a promotion makes the candidate current at once.
FLYWHEEL_CANARY = env_bool("FLYWHEEL_CANARY", True)
FLYWHEEL_CANARY_SHARE = env_float("FLYWHEEL_CANARY_SHARE", 0.1, minimum=0.001, maximum=0.999)
# Interactions per arm before the rollout may complete.
FLYWHEEL_CANARY_MIN_SAMPLE = env_int("FLYWHEEL_CANARY_MIN_SAMPLE", 500, minimum=1)
FLYWHEEL_CANARY_MAX_DURATION_S = env_int("FLYWHEEL_CANARY_MAX_DURATION_S", 7 * 86400, minimum=60)
# bad_outcome (thumbs down, regenerate or heavy edit), or one feedback kind.
FLYWHEEL_CANARY_METRIC = env_str("FLYWHEEL_CANARY_METRIC", "bad_outcome")
if FLYWHEEL_CANARY_METRIC not in (
    "bad_outcome", "thumbs_down", "regenerated", "edited", "corrected", "thumbs_up",
    "accepted", "copied",
):  # fmt: skip
    raise ImproperlyConfigured(
        "FLYWHEEL_CANARY_METRIC must be bad_outcome or a feedback kind (thumbs_down, regenerated, "
        f"edited, corrected, thumbs_up, accepted, copied), got {FLYWHEEL_CANARY_METRIC!r}"
    )
FLYWHEEL_CANARY_ALPHA = env_float("FLYWHEEL_CANARY_ALPHA", 0.05, minimum=1e-6, maximum=0.5)
# How much worse (absolute rate) the canary may be and still complete.
FLYWHEEL_CANARY_MARGIN = env_float("FLYWHEEL_CANARY_MARGIN", 0.02, minimum=0, maximum=1)
# Standard deviation of the mSPRT's normal mixture: the size of difference it is tuned to.
FLYWHEEL_CANARY_TAU = env_float("FLYWHEEL_CANARY_TAU", 0.05, minimum=1e-4, maximum=1)
# Interactions per arm before an automatic rollback may happen.
FLYWHEEL_CANARY_BURN_IN = env_int("FLYWHEEL_CANARY_BURN_IN", 30, minimum=1)
# An edit that changes at least this share of the characters counts as a heavy edit.
FLYWHEEL_HEAVY_EDIT_DISTANCE = env_float(
    "FLYWHEEL_HEAVY_EDIT_DISTANCE", 0.5, minimum=0.0, maximum=1.0
)
# How long a client may reuse a route answer; the server caches it as long at most.
FLYWHEEL_ROUTE_TTL_S = env_int("FLYWHEEL_ROUTE_TTL_S", 30, minimum=0)
FLYWHEEL_ROUTE_CACHE_S = env_float("FLYWHEEL_ROUTE_CACHE_S", 5.0, minimum=0)
# Monitor after a rollout: the last WINDOW against the BASELINE before it.
FLYWHEEL_MONITOR_WINDOW_S = env_int("FLYWHEEL_MONITOR_WINDOW_S", 3600, minimum=60)
FLYWHEEL_MONITOR_BASELINE_S = env_int("FLYWHEEL_MONITOR_BASELINE_S", 7 * 86400, minimum=60)
FLYWHEEL_MONITOR_BOUND = env_float("FLYWHEEL_MONITOR_BOUND", 0.05, minimum=0, maximum=1)
FLYWHEEL_MONITOR_MIN_SAMPLE = env_int("FLYWHEEL_MONITOR_MIN_SAMPLE", 200, minimum=1)
# Training runs (end) -------------------------------------------------------------

# Webhooks (training/webhooks.py) -------------------------------------------------
# Absolute links in webhook payloads start with this (no trailing slash).
FLYWHEEL_PUBLIC_BASE_URL = env_str("FLYWHEEL_PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Seconds to connect and to read each chunk of a receiver's answer: a slow or dead
# endpoint holds a webhook worker this long at most.
FLYWHEEL_WEBHOOK_TIMEOUT_S = env_float("FLYWHEEL_WEBHOOK_TIMEOUT_S", 5.0, minimum=0.1, maximum=60)
FLYWHEEL_WEBHOOK_MAX_ATTEMPTS = env_int("FLYWHEEL_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
# Delay before retry n is base * 2**(n-1), capped.
FLYWHEEL_WEBHOOK_BACKOFF_BASE_S = env_float("FLYWHEEL_WEBHOOK_BACKOFF_BASE_S", 10.0, minimum=0)
FLYWHEEL_WEBHOOK_BACKOFF_MAX_S = env_float("FLYWHEEL_WEBHOOK_BACKOFF_MAX_S", 3600.0, minimum=0)
FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S = env_int("FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S", 10, minimum=1)
# How often the scheduler runs verify_audit (the audit chain and the manifests' chain).
FLYWHEEL_AUDIT_VERIFY_INTERVAL_S = env_int("FLYWHEEL_AUDIT_VERIFY_INTERVAL_S", 3600, minimum=60)
# Retention (flywheel_site/audit/retention.py): days interactions and feedback are kept
# for sources without a RetentionRule (0: forever), rows per purge transaction, and how
# often the purge runs.
FLYWHEEL_RETENTION_DAYS = env_int("FLYWHEEL_RETENTION_DAYS", 0, minimum=0)
FLYWHEEL_RETENTION_BATCH = env_int("FLYWHEEL_RETENTION_BATCH", 500, minimum=1)
FLYWHEEL_RETENTION_INTERVAL_S = env_int("FLYWHEEL_RETENTION_INTERVAL_S", 86400, minimum=60)
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
# Webhooks (end) ------------------------------------------------------------------
# Metrics (the flywheel dashboard, /api/v1/metrics) -------------------------------
# Daily rollups are kept in the transaction of every write. Off only to measure what
# they cost (bench/ingest.py); the counts then drift until `manage.py metrics_rebuild`.
FLYWHEEL_METRICS_ROLLUPS = env_bool("FLYWHEEL_METRICS_ROLLUPS", True)
# Health verdict thresholds: "stalling" when any is crossed, with the cause named.
FLYWHEEL_HEALTH_PASS_RATE_MIN = env_float(
    "FLYWHEEL_HEALTH_PASS_RATE_MIN", 0.2, minimum=0, maximum=1
)
FLYWHEEL_HEALTH_QUEUE_MAX_AGE_DAYS = env_float("FLYWHEEL_HEALTH_QUEUE_MAX_AGE_DAYS", 3.0, minimum=0)
# Queue growth week over week above this share (0.5: half again as many queued items).
FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX = env_float("FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX", 0.5, minimum=0)
FLYWHEEL_HEALTH_FEEDBACK_RATE_MIN = env_float(
    "FLYWHEEL_HEALTH_FEEDBACK_RATE_MIN", 0.05, minimum=0, maximum=1
)
# Quality: the last this many cycles each improved the gate metric by less than the
# minimum delta ("stalling"), or any of them made it worse ("regressing").
FLYWHEEL_HEALTH_QUALITY_DELTA_MIN = env_float("FLYWHEEL_HEALTH_QUALITY_DELTA_MIN", 0.02, minimum=0)
FLYWHEEL_HEALTH_QUALITY_CYCLES = env_int("FLYWHEEL_HEALTH_QUALITY_CYCLES", 2, minimum=1)
# Metrics (end) -------------------------------------------------------------------
