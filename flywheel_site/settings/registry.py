"""The model registry: promotion, canary experiments and their sequential test, the route
(GET /api/v1/route), and the monitor after a rollout (training.registry: services, experiments,
route)."""

from flywheel_site.env import env_bool, env_choice, env_float, env_int, env_str

# The canary's primary metric: bad_outcome (thumbs down, regenerate or heavy edit), or one
# feedback kind. The kinds are FeedbackKind's values but for rating and comment, which are
# not events one arm can have more of (a test keeps the two lists in step).
CANARY_METRICS = (
    "bad_outcome", "thumbs_down", "regenerated", "edited", "corrected", "thumbs_up",
    "accepted", "copied",
)  # fmt: skip

# What the serving application calls the base model (the route's answer when no model is
# promoted). Trained models serve under their own serving name.
FLYWHEEL_BASE_SERVING_NAME = env_str("FLYWHEEL_BASE_SERVING_NAME", "base")
# Promotion starts a canary experiment; off: a promotion makes the candidate current at once.
FLYWHEEL_CANARY = env_bool("FLYWHEEL_CANARY", True)
FLYWHEEL_CANARY_SHARE = env_float("FLYWHEEL_CANARY_SHARE", 0.1, minimum=0.001, maximum=0.999)
# Interactions per arm before the rollout may complete.
FLYWHEEL_CANARY_MIN_SAMPLE = env_int("FLYWHEEL_CANARY_MIN_SAMPLE", 500, minimum=1)
FLYWHEEL_CANARY_MAX_DURATION_S = env_int("FLYWHEEL_CANARY_MAX_DURATION_S", 7 * 86400, minimum=60)
FLYWHEEL_CANARY_METRIC = env_choice("FLYWHEEL_CANARY_METRIC", CANARY_METRICS, "bad_outcome")
FLYWHEEL_CANARY_ALPHA = env_float("FLYWHEEL_CANARY_ALPHA", 0.05, minimum=1e-6, maximum=0.5)
# How much worse (absolute rate) the canary may be and still complete.
FLYWHEEL_CANARY_MARGIN = env_float("FLYWHEEL_CANARY_MARGIN", 0.02, minimum=0, maximum=1)
# Tuning of the sequential test, not of a deployment (no variable): the standard deviation
# of the mSPRT's normal mixture, the size of difference it is tuned to find, and the
# route keys per arm before an automatic decision may happen.
FLYWHEEL_CANARY_TAU = 0.05
FLYWHEEL_CANARY_BURN_IN = 30
# The margin's kind (training.registry.clustered): absolute, a difference of rates; relative,
# a share of the control's rate (0.2 = the canary may be 20% worse). An experiment keeps the
# kind it started with.
MARGIN_KINDS = ("absolute", "relative")
FLYWHEEL_CANARY_MARGIN_KIND = env_choice("FLYWHEEL_CANARY_MARGIN_KIND", MARGIN_KINDS, "absolute")
# An interaction counts once its feedback window has closed (outcome horizon): late feedback
# must not dilute recent traffic, which is mostly the canary's early on.
FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = env_int("FLYWHEEL_CANARY_FEEDBACK_WINDOW_S", 86400, minimum=0)
# Sample-ratio mismatch: the sequential test's p-value of the keys' split below this pauses
# decisions; a correct split is paused with at most this probability over all looks.
FLYWHEEL_CANARY_SRM_P = env_float("FLYWHEEL_CANARY_SRM_P", 0.001, minimum=1e-12, maximum=0.5)
# An edit that changes at least this share of the characters counts as a heavy edit.
FLYWHEEL_HEAVY_EDIT_DISTANCE = env_float(
    "FLYWHEEL_HEAVY_EDIT_DISTANCE", 0.5, minimum=0.0, maximum=1.0
)
# How long a client may reuse a route answer.
FLYWHEEL_ROUTE_TTL_S = env_int("FLYWHEEL_ROUTE_TTL_S", 30, minimum=0)
# How long a web process reuses the experiment it read (a change is seen at once through
# Redis): tuning, not deployment (no variable).
FLYWHEEL_ROUTE_CACHE_S = 5.0
# After a canary completes, this share of the route keys stays on the previous model for
# FLYWHEEL_HOLDBACK_DAYS; the monitor compares the new model with them (0: no holdback).
FLYWHEEL_HOLDBACK_SHARE = env_float("FLYWHEEL_HOLDBACK_SHARE", 0.02, minimum=0, maximum=0.5)
FLYWHEEL_HOLDBACK_DAYS = env_int("FLYWHEEL_HOLDBACK_DAYS", 14, minimum=1)
# Monitor after a rollout: the last WINDOW against the BASELINE before it.
FLYWHEEL_MONITOR_WINDOW_S = env_int("FLYWHEEL_MONITOR_WINDOW_S", 3600, minimum=60)
FLYWHEEL_MONITOR_BASELINE_S = env_int("FLYWHEEL_MONITOR_BASELINE_S", 7 * 86400, minimum=60)
FLYWHEEL_MONITOR_BOUND = env_float("FLYWHEEL_MONITOR_BOUND", 0.05, minimum=0, maximum=1)
FLYWHEEL_MONITOR_MIN_SAMPLE = env_int("FLYWHEEL_MONITOR_MIN_SAMPLE", 200, minimum=1)
