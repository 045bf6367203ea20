from flywheel_site.audit.models import AuditCheck, RetentionRun


def audit_check_latest() -> AuditCheck | None:
    return AuditCheck.objects.order_by("-ran_at", "-pk").first()


def audit_status() -> dict:
    """The dashboard's audit card: the last chain check and the last retention run."""
    return {
        "check": audit_check_latest(),
        "retention": RetentionRun.objects.order_by("-ran_at", "-pk").first(),
    }
