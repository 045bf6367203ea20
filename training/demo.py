"""The rest of the loop for `manage.py load_demo`: curation, scripted reviews, gold, a first
frozen dataset version and a tiny local base model, so a newcomer sees every screen filled
and can start a training run at once.

Idempotent: a second call curates only what is pending, reviews nothing more once the
scripted reviewers have reviewed, reuses the dataset and its first version, and keeps the
base model it built.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from curation import demo as curation_demo
from curation import pipeline, runs
from curation.models import CandidateKind, CurationRun, Interaction
from flywheel_site.access import ANNOTATOR
from review import services as review_services
from review.models import REJECT_REASONS, Decision, Review, ReviewItem
from training import services
from training.models import Dataset, DatasetVersion, GoldPair

DATASET_NAME = "acme-support"
DATASET_DESCRIPTION = (
    "Demo: every approved preference pair from the Acme Cloud demo traffic, no lag, so the "
    "whole loop can be tried at once."
)
# New approved gold that triggers the next version and training run: low, so a newcomer
# who reviews a few dozen items sees the trigger fire.
DATASET_THRESHOLD = 25
DATASET_EVAL_FRACTION = 0.2
# Two scripted reviewers, so items that need two agreeing reviews are settled too.
REVIEWERS = ("demo-reviewer-1", "demo-reviewer-2")
# Preference items the scripted reviewers settle; the rest stay queued for people.
REVIEW_TARGET = 80
# One in this many scripted decisions is a rejection, so outcomes are not all approvals.
REJECT_EVERY = 6
REJECT_REASON = REJECT_REASONS[0]
RUBRIC = {"accuracy": 4, "helpfulness": 4, "safety": 5}

CURATED = (
    "Curated {n} pending demo interactions: {candidates} candidates, {sampled} queued for review."
)
REVIEWED = "Scripted reviews: {approved} items approved and {rejected} rejected by {reviewers}."
ALREADY_REVIEWED = "Scripted reviews already done ({n} reviews); none added."
GOLD = "Gold pairs: {created} new, {total} in all."
DATASET = "Dataset {name!r} (lag 0 days, eval {eval:.0%}, trains after {threshold} new pairs)."
FROZEN = "Froze {version}: {train} train and {eval} eval pairs."
HAS_VERSION = "{version} already frozen; freeze further versions on the dataset page."
NOTHING_TO_FREEZE = "No approved preference pairs yet: nothing to freeze."
BASE_BUILT = "Built a tiny base model (2-layer Llama, 512-token BPE) in {path}."
BASE_EXISTS = "Base model for training: {path}."
BASE_HINT = (
    "FLYWHEEL_BASE_MODEL={path} (the default); start a run at /training/runs/ "
    "and watch its progress."
)


def _reviewers() -> list:
    users = get_user_model()
    group, _ = Group.objects.get_or_create(name=ANNOTATOR)
    out = []
    for name in REVIEWERS:
        user, created = users.objects.get_or_create(username=name)
        if created:
            # A scripted account: nobody signs in as it.
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(group)
        out.append(user)
    return out


def demo_curate(*, stdout) -> None:
    ids = list(
        Interaction.objects.filter(curation_state=Interaction.CurationState.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return
    curation_demo.demo_policy_apply()
    run = runs.run_start(trigger=CurationRun.Trigger.COMMAND, total=len(ids))
    with runs.run_tracked(run):
        totals = pipeline.interactions_curate(interaction_ids=ids, run=run)
    stdout.write(
        CURATED.format(
            n=len(ids), candidates=totals.get("candidates", 0), sampled=totals.get("sampled", 0)
        )
    )


def _rejects(candidate_id: int) -> bool:
    # A hash of the id rather than random(): the same items are rejected on every machine.
    digest = hashlib.sha256(f"demo-review-{candidate_id}".encode()).digest()
    return digest[0] % REJECT_EVERY == 0


def _claim_through_queue(*, item: ReviewItem, user) -> bool:
    """Lease `item` to the next reviewer as the queue would: the items ahead of it for
    them are the ones the first reviewer skipped (no user answer to approve), and they
    skip those too. False if the queue never reaches it."""
    while (claimed := review_services.item_claim_next(user=user)) is not None:
        if claimed.pk == item.pk:
            return True
        review_services.item_skip(item=claimed, user=user)
    return False


def demo_reviews(*, stdout) -> None:
    """Review queued preference items through the review service, as annotators would:
    claim the next item, submit an agreeing decision from each reviewer it needs."""
    reviewers = _reviewers()
    done = Review.objects.filter(reviewer__in=reviewers).count()
    if done:
        stdout.write(ALREADY_REVIEWED.format(n=done))
        return
    approved = rejected = 0
    # Items are claimed in queue order (priority, then id); needs-answer items (no user
    # answer to approve) are skipped and left for people.
    while approved + rejected < REVIEW_TARGET:
        item = review_services.item_claim_next(user=reviewers[0])
        if item is None:
            break
        candidate = item.candidate
        if candidate.kind != CandidateKind.PREFERENCE:
            review_services.item_skip(item=item, user=reviewers[0])
            continue
        reject = _rejects(candidate.pk)
        for index, reviewer in enumerate(reviewers[: item.reviews_required]):
            if index and not _claim_through_queue(item=item, user=reviewer):
                break
            review_services.review_submit(
                item=item,
                reviewer=reviewer,
                decision=Decision.REJECT if reject else Decision.APPROVE,
                reject_reason=REJECT_REASON if reject else "",
                **RUBRIC,
            )
        if reject:
            rejected += 1
        else:
            approved += 1
    names = " and ".join(r.username for r in reviewers)
    stdout.write(REVIEWED.format(approved=approved, rejected=rejected, reviewers=names))


def demo_dataset(*, stdout, user) -> DatasetVersion | None:
    created = services.gold_pairs_sync()
    stdout.write(GOLD.format(created=created, total=GoldPair.objects.count()))
    dataset = Dataset.objects.filter(name=DATASET_NAME).first()
    if dataset is None:
        dataset = services.dataset_create(
            name=DATASET_NAME,
            description=DATASET_DESCRIPTION,
            user=user,
            lag_days=0,
            eval_fraction=DATASET_EVAL_FRACTION,
            train_threshold=DATASET_THRESHOLD,
        )
    stdout.write(
        DATASET.format(
            name=dataset.name, eval=dataset.eval_fraction, threshold=dataset.train_threshold
        )
    )
    existing = dataset.versions.exclude(status=DatasetVersion.Status.DRAFT).order_by("number")
    if existing.exists():
        stdout.write(HAS_VERSION.format(version=existing.first()))
        return existing.first()
    if not GoldPair.objects.filter(kind="preference").exists():
        stdout.write(NOTHING_TO_FREEZE)
        return None
    version, _ = services.dataset_version_freeze(dataset=dataset, user=user, number=1)
    counts = version.manifest["counts"]
    stdout.write(FROZEN.format(version=version, train=counts["train"], eval=counts["eval"]))
    return version


def _corpus(limit: int = 600) -> list[str]:
    """Demo texts, so the tiny tokenizer's merges fit the words it will train on."""
    texts: list[str] = []
    for prompt, chosen, rejected in GoldPair.objects.order_by("pk").values_list(
        "prompt", "chosen", "rejected"
    )[:limit]:
        texts.extend(m.get("content", "") for m in prompt if isinstance(m, dict))
        texts.extend(t for t in (chosen, rejected) if t)
    return texts


def demo_base_model(*, stdout) -> Path:
    from training.tinylm import build_tiny_lm

    path = Path(settings.FLYWHEEL_BASE_MODEL).absolute()
    if (path / "config.json").is_file():
        stdout.write(BASE_EXISTS.format(path=path))
    else:
        build_tiny_lm(path, corpus=_corpus())
        stdout.write(BASE_BUILT.format(path=path))
    stdout.write(BASE_HINT.format(path=path))
    return path


def demo_loop_load(*, stdout) -> None:
    """After the demo traffic is ingested: curate, review, gold, dataset v1, base model."""
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    demo_curate(stdout=stdout)
    demo_reviews(stdout=stdout)
    # The model is built from the demo's own texts, and only once there is data to train.
    if demo_dataset(stdout=stdout, user=admin) is not None:
        demo_base_model(stdout=stdout)
