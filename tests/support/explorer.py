"""Builders for candidates-explorer tests: candidates written directly, with
the texts, kinds and scores a test needs (the pipeline has its own tests)."""

from datetime import UTC, datetime

from curation.models import Candidate, Interaction, Source

REFERENCE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def candidate(
    prompt: str = "How do I reset my password?",
    chosen: str | None = "Open Settings, then Security.",
    rejected: str | None = "Open the settings.",
    *,
    source: str = "tests",
    **fields,
) -> Candidate:
    src = Source.objects.get_or_create(name=source)[0]
    n = Interaction.objects.count()
    interaction = Interaction.objects.create(
        source=src,
        event_id=f"x{n}-{src.pk}",
        occurred_at=REFERENCE,
        received_at=REFERENCE,
        messages=[{"role": "user", "content": prompt}],
        response=rejected or "",
        model=fields.get("model", ""),
        task_type=fields.get("task_type", ""),
    )
    fields.setdefault("kind", "preference" if chosen and rejected else "needs_answer")
    return Candidate.objects.create(
        interaction=interaction,
        prompt=interaction.messages,
        chosen=chosen,
        rejected=rejected,
        exact_key=f"k{interaction.pk}",
        **fields,
    )
