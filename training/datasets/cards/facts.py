"""What Flywheel knows about a frozen version, gathered once for its cards (reads only).

Everything here is fixed once the version is frozen: the manifest, the member gold pairs and
their reviews (append-only), the curation policies they went through (one row per version),
and the review guidelines in force when the version was frozen. So the cards of a version
come out the same on every export.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings

from curation.models import CurationPolicy
from review.agreement import FIELD_LEVELS, agreement_summary
from review.models import Guideline
from training.datasets.models import DatasetVersion, GoldPair, Membership

FETCH_ROWS = 2000
DIGITS = 4
RUBRIC = {
    "decision": "approve, approve with an edit of the chosen answer, or reject (with a reason)",
    "accuracy": "1-5",
    "helpfulness": "1-5",
    "safety": "1-5",
}
PII_KINDS = ("email", "phone", "card", "iban", "ssn", "ip")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS)


def _members(version: DatasetVersion):
    return (
        GoldPair.objects.filter(
            memberships__version=version,
            memberships__split__in=[Membership.Split.TRAIN, Membership.Split.EVAL],
        )
        .order_by("pk")
        .values_list("pk", "reviews", "occurred_at")
        .iterator(chunk_size=FETCH_ROWS)
    )


def _reviews(version: DatasetVersion) -> dict[str, Any]:
    per_pair: Counter = Counter()
    ratings: list[dict] = []
    first = last = None
    for pair_id, reviews, occurred_at in _members(version):
        reviews = reviews or []
        per_pair[len(reviews)] += 1
        first = occurred_at if first is None else min(first, occurred_at)
        last = occurred_at if last is None else max(last, occurred_at)
        if len(reviews) < 2:
            continue  # agreement is measured on items reviewed twice or more; keep only those
        ratings += [
            {"item_id": pair_id, "reviewer_id": r.get("reviewer"), **{f: r.get(f) for f in RUBRIC}}
            for r in reviews
        ]
    pairs = sum(per_pair.values())
    summary = agreement_summary(ratings)
    return {
        "reviews_per_pair": {
            "mean": _round(sum(n * c for n, c in per_pair.items()) / pairs) if pairs else None,
            "histogram": {str(n): c for n, c in sorted(per_pair.items())},
        },
        "agreement": {
            name: {
                "level": FIELD_LEVELS[name],
                "krippendorff_alpha": _round(stats["alpha"]),
                "observed_agreement": _round(stats["observed_agreement"]),
                "items": stats["n_items"],
            }
            for name, stats in summary.items()
        },
        "timeframe": {
            "first": first.isoformat() if first else None,
            "last": last.isoformat() if last else None,
        },
    }


def _policies(versions: list[int]) -> list[dict]:
    return [
        {
            "version": p.version,
            "enabled_filters": list(p.enabled_filters),
            "toxicity_threshold": p.toxicity_threshold,
            "quality_min": p.quality_min,
            "near_dup_threshold": p.near_dup_threshold,
            "reviews_required": p.reviews_required,
        }
        for p in CurationPolicy.objects.filter(version__in=versions).order_by("version")
    ]


def _guidelines(version: DatasetVersion) -> dict | None:
    row = (
        Guideline.objects.filter(created_at__lte=version.frozen_at).order_by("-version").first()
        if version.frozen_at
        else None
    )
    return {"version": row.version, "created_at": row.created_at.isoformat()} if row else None


def card_facts(*, version: DatasetVersion) -> dict[str, Any]:
    manifest = version.manifest
    return {
        "name": version.dataset.name,
        "description": version.dataset.description,
        "version": version.number,
        "kind": version.kind,
        "license": settings.FLYWHEEL_DATASET_LICENSE,
        "manifest_sha256": version.manifest_sha256,
        "frozen_at": manifest.get("frozen_at"),
        "cutoff": manifest.get("cutoff"),
        "rules": manifest.get("rules", {}),
        "counts": manifest.get("counts", {}),
        "formats": list(version.formats),
        "models": manifest.get("models", []),
        "reviewers": len(manifest.get("reviewers", [])),
        "files": manifest.get("files", {}),
        "guidelines": _guidelines(version),
        "rubric": RUBRIC,
        "policies": _policies(manifest.get("policy_versions", [])),
        "pii_kinds": list(PII_KINDS),
        **_reviews(version),
    }
