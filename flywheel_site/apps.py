from django.apps import AppConfig


class FlywheelSiteConfig(AppConfig):
    """The site that wires the apps together. Apps depend one way (training ->
    review -> curation); where an upstream step must hand over to a downstream
    one, the hand-over is connected here, not inside the upstream app."""

    name = "flywheel_site"
    label = "flywheel_site"

    def ready(self) -> None:
        from curation import hooks
        from review import intake as review_intake
        from review import rollups as review_rollups
        from training.datasets import hooks as dataset_hooks
        from training.registry import rollback as registry_rollback
        from training.registry import selectors as registry_selectors

        # Curate, then queue: sampled candidates enter the review queue in the
        # transaction that sampled them.
        hooks.on_candidates_sampled(review_intake.items_create_for_sampled)
        # Review's filter-agreement counts read the candidates' latest verdicts: a
        # re-curation takes its reviewed candidates' counts out and puts them back.
        hooks.on_candidates_recurating(review_rollups.review_rollup_delta)
        # Quarantine, then roll back: models trained on quarantined data are rolled back in
        # the transaction that records the quarantine; the confirmation pages list them.
        dataset_hooks.on_quarantine_recorded(registry_rollback.models_rollback_for)
        dataset_hooks.on_models_affected(registry_selectors.models_trained_on)
