from django.apps import AppConfig


class FlywheelSiteConfig(AppConfig):
    """The site that wires the apps together. Apps depend one way (training ->
    review -> curation); where an upstream step must hand over to a downstream
    one, the hand-over is connected here, not inside the upstream app."""

    name = "flywheel_site"
    label = "flywheel_site"

    def ready(self) -> None:
        from curation import hooks
        from review import services as review_services

        # Curate, then queue: sampled candidates enter the review queue in the
        # transaction that sampled them.
        hooks.on_candidates_sampled(review_services.items_create_for_sampled)
