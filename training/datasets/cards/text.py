"""The sentences both cards say about a version, from its facts (cards.facts): one wording
for the Hugging Face card's body and the Croissant RAI fields."""

from __future__ import annotations

from typing import Any

LIMITATIONS = [
    "Prompts and answers come from one deployment's users and reflect its audience, "
    "languages and tasks; they are not a sample of the general population.",
    "Chosen answers were written or approved by a small group of reviewers following the "
    "guidelines named here; their judgement is the label.",
    "PII stripping is pattern-based (the kinds listed) and cannot find names, addresses or "
    "other personal details written in free text.",
    "Pairs younger than the lag were not eligible, so the latest traffic is not included.",
]


def data_collection(f: dict[str, Any]) -> str:
    return (
        "Interactions (prompt, model answer) and user feedback (thumbs, edits, ratings) sent "
        "by an LLM application to Flywheel's ingest API. Candidates were selected by the "
        "curation filters, reviewed by people, and approved outcomes became gold pairs. "
        f"Answers from models: {', '.join(f['models']) or 'not recorded'}."
    )


def annotation_protocol(f: dict[str, Any]) -> list[str]:
    guidelines = f["guidelines"]
    named = (
        f"Review guidelines version {guidelines['version']} (in force when the version was frozen)."
        if guidelines
        else "No review guidelines were recorded when the version was frozen."
    )
    rubric = "; ".join(f"{name}: {scale}" for name, scale in f["rubric"].items())
    return [
        named,
        f"Each item is reviewed independently; rubric: {rubric}.",
        "When reviewers disagree an adjudicator decides; only approved outcomes are gold.",
    ]


def annotations_per_item(f: dict[str, Any]) -> str:
    per = f["reviews_per_pair"]
    spread = ", ".join(f"{n} review(s): {c} pair(s)" for n, c in per["histogram"].items())
    return f"mean {per['mean']} ({spread})" if per["mean"] is not None else "no pairs"


def annotation_analysis(f: dict[str, Any]) -> list[str]:
    out = []
    for name, a in f["agreement"].items():
        if a["items"]:
            out.append(
                f"{name} ({a['level']}): Krippendorff's alpha {a['krippendorff_alpha']}, "
                f"observed agreement {a['observed_agreement']} over {a['items']} item(s) "
                "with two or more reviews"
            )
        else:
            out.append(f"{name}: no item had two or more reviews, so no agreement figure")
    return out


def machine_annotation_tools(f: dict[str, Any]) -> list[str]:
    if not f["policies"]:
        return ["No curation policy recorded for these pairs."]
    return [
        f"Curation policy version {p['version']}: filters {', '.join(p['enabled_filters'])}; "
        f"toxicity threshold {p['toxicity_threshold']} (Detoxify), quality minimum "
        f"{p['quality_min']}, near-duplicate threshold {p['near_dup_threshold']} (MinHash), "
        f"{p['reviews_required']} review(s) required"
        for p in f["policies"]
    ]


def personal_information(f: dict[str, Any]) -> list[str]:
    return [
        "Personal data of these kinds is replaced by a placeholder at ingest, on every path, "
        f"before anything is stored: {', '.join(f['pii_kinds'])}.",
        "User identifiers are stored only as keyed hashes and are not exported.",
        "The curation filter 'pii' drops candidates in which residual personal data is found.",
    ]


def preprocessing(f: dict[str, Any]) -> list[str]:
    rules = f["rules"]
    return [
        f"Lag: only interactions older than {rules.get('lag_days')} day(s) at freezing "
        f"(cut-off {f['cutoff']}) were eligible.",
        f"Split: a pair's lineage key (a sha256, kept by corrections) decides train or eval; "
        f"eval fraction {rules.get('eval_fraction')}.",
        f"Dedup: exact and near duplicates removed at curation; train pairs at least "
        f"{rules.get('near_dup_threshold')} similar (MinHash Jaccard) to an eval pair dropped.",
        "Task types: " + (", ".join(rules.get("task_types") or []) or "all") + ".",
    ]
