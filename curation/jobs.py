"""RQ entry points for curation: thin, take ids, call services."""

from curation import services


def curate_interactions(interaction_ids: list[int]) -> dict:
    return {"linked": services.feedback_link_orphans(interaction_ids=interaction_ids)}
