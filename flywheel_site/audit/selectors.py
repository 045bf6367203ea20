from flywheel_site.audit.models import AuditCheck


def audit_check_latest() -> AuditCheck | None:
    return AuditCheck.objects.order_by("-ran_at", "-pk").first()
