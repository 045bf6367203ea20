"""Audit and retention (flywheel_site/audit): the chain's verification and the purge."""

from flywheel_site.env import env_int

# How often the scheduler runs verify_audit (the audit chain and the manifests' chain).
FLYWHEEL_AUDIT_VERIFY_INTERVAL_S = env_int("FLYWHEEL_AUDIT_VERIFY_INTERVAL_S", 3600, minimum=60)
# Retention (flywheel_site/audit/retention.py): days interactions and feedback are kept
# for sources without a RetentionRule (0: forever), rows per purge transaction, and how
# often the purge runs.
FLYWHEEL_RETENTION_DAYS = env_int("FLYWHEEL_RETENTION_DAYS", 0, minimum=0)
FLYWHEEL_RETENTION_BATCH = env_int("FLYWHEEL_RETENTION_BATCH", 500, minimum=1)
FLYWHEEL_RETENTION_INTERVAL_S = env_int("FLYWHEEL_RETENTION_INTERVAL_S", 86400, minimum=60)
