"""Scheduled by flywheel_site/cron.py. Read-only but for its AuditCheck row: a retry or
a second run only records one more check."""

from flywheel_site.audit.retention import retention_purge
from flywheel_site.audit.services import audit_verify


def audit_verify_scheduled() -> int:
    return audit_verify().pk


def retention_purge_scheduled() -> int:
    return retention_purge().pk
