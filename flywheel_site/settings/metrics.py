"""Metrics (the flywheel dashboard, /api/v1/metrics): rollups and health verdicts."""

from flywheel_site.env import env_bool, env_float, env_int, env_networks

# Daily rollups are kept in the transaction of every write. Off only to measure what
# they cost (bench/metrics.py); the counts then drift until `manage.py metrics_rebuild`.
FLYWHEEL_METRICS_ROLLUPS = env_bool("FLYWHEEL_METRICS_ROLLUPS", True)
# Health verdict thresholds: "stalling" when any is crossed, with the cause named.
FLYWHEEL_HEALTH_PASS_RATE_MIN = env_float(
    "FLYWHEEL_HEALTH_PASS_RATE_MIN", 0.2, minimum=0, maximum=1
)
FLYWHEEL_HEALTH_QUEUE_MAX_AGE_DAYS = env_float("FLYWHEEL_HEALTH_QUEUE_MAX_AGE_DAYS", 3.0, minimum=0)
# Queue growth week over week above this share (0.5: half again as many queued items).
FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX = env_float("FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX", 0.5, minimum=0)
# ...and by at least this many items: a queue that grows from 0, or from 4 to 9, is a day's
# sampling waiting for its reviewer (the product's 7.5% sample queues a few items a day at
# demo traffic), not a backlog; 25 items is about an hour of one reviewer's work.
FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS = env_int(
    "FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS", 25, minimum=1
)
FLYWHEEL_HEALTH_FEEDBACK_RATE_MIN = env_float(
    "FLYWHEEL_HEALTH_FEEDBACK_RATE_MIN", 0.05, minimum=0, maximum=1
)
# Quality: the last this many cycles each improved the gate metric by less than the
# minimum delta ("stalling"), or any of them made it worse ("regressing").
FLYWHEEL_HEALTH_QUALITY_DELTA_MIN = env_float("FLYWHEEL_HEALTH_QUALITY_DELTA_MIN", 0.02, minimum=0)
FLYWHEEL_HEALTH_QUALITY_CYCLES = env_int("FLYWHEEL_HEALTH_QUALITY_CYCLES", 2, minimum=1)
# Prometheus /metrics: clients from these addresses (CIDR blocks, comma-separated) scrape
# without a token; anyone else needs a token with the `metrics` scope. Empty: token only.
FLYWHEEL_METRICS_ALLOW_CIDRS = env_networks("FLYWHEEL_METRICS_ALLOW_CIDRS", [])
