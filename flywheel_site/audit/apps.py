from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "flywheel_site.audit"
    label = "audit"

    def ready(self) -> None:
        from flywheel_site.audit import sql

        # An event table a later migration creates gets the chain's triggers at once.
        post_migrate.connect(sql.chain_triggers_install_signal, dispatch_uid="audit-chain")
