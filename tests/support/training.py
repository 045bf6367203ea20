"""Builders and shared fixtures for training tests: approved review outcomes on real
candidates, made with the ORM the way the review service leaves them (item, reviews,
outcome); registry rows without training; and the small learnable preference task the
trainer tests train the tiny model on."""

import itertools
import json
import random
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from curation.models import Candidate, CurationPolicy, Interaction
from review.models import Review, ReviewItem, ReviewOutcome
from tests.support import factories
from tests.support.curation import source
from tests.support.model_cache import model_built
from training.datasets import services
from training.models import DatasetVersion, ModelVersion, TrainingRun

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _texts_by_test(request):
    """Each test numbers its generated pairs from a start of its own. A pair's train/eval split
    is a hash of its text, so numbering across the process made a test's splits depend on
    which tests its worker ran first (an empty eval split in a few percent of orders); a start
    taken from the test's id gives it the same texts, and the same splits, every run."""
    global _counter
    _counter = itertools.count(1 + zlib.crc32(request.node.nodeid.encode()) % 4000)


# Distinct vocabularies so that generated texts are far apart under MinHash unless a test
# makes them near duplicates on purpose.
_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "grove",
    "heath",
    "iris",
    "jade",
    "kelp",
    "lotus",
    "maple",
    "nectar",
    "onyx",
    "pearl",
]


def text(seed: int, words: int = 24) -> str:
    """A sentence that shares few character shingles with text(other seed)."""
    n = len(_WORDS)
    return " ".join(
        f"{_WORDS[(seed * 7 + i * 13) % n]}{(seed * 31 + i) % 97}" for i in range(words)
    )


def reviewer(name: str = "rita") -> User:
    return User.objects.get_or_create(username=name)[0]


def approved(
    *,
    kind: str = "preference",
    prompt: str | None = None,
    chosen: str | None = None,
    rejected: str | None = None,
    occurred_at: datetime | None = None,
    received_at: datetime | None = None,
    task_type: str = "support",
    model: str = "bot-v1",
    policy: CurationPolicy | None = None,
    src=None,
    reviewers: tuple[str, ...] = ("rita",),
    result: str = "approved",
) -> ReviewOutcome:
    """One approved outcome. kind is the candidate's kind (preference, sft, needs_answer)."""
    n = next(_counter)
    when = occurred_at or timezone.now() - timedelta(days=30)
    prompt = prompt if prompt is not None else f"question {n}: {text(n, 12)}"
    messages = [{"role": "user", "content": prompt}]
    response = rejected if rejected is not None else f"model answer {n}: {text(n + 1000)}"
    interaction = Interaction.objects.create(
        source=src or source(),
        event_id=f"gold-{n}",
        occurred_at=when,
        received_at=received_at or when,
        messages=messages,
        response=response,
        task_type=task_type,
        model=model,
        curation_state="done",
    )
    final = chosen if chosen is not None else f"approved answer {n}: {text(n + 2000)}"
    candidate = Candidate.objects.create(
        interaction=interaction,
        kind=kind,
        prompt=messages,
        chosen=final if kind == "preference" else (response if kind == "sft" else None),
        rejected=response if kind == "preference" else None,
        task_type=task_type,
        model=model,
        status="passed",
        exact_key=f"k{n}",
        policy=policy or CurationPolicy.objects.order_by("-version").first(),
    )
    item = ReviewItem.objects.create(
        candidate=candidate,
        stratum="s",
        inclusion_probability=1.0,
        reviews_required=len(reviewers),
    )
    lease_fields = {f.name for f in ReviewItem._meta.fields}
    for i, name in enumerate(reviewers):
        person = reviewer(name)
        # The review table only accepts a review from the item's lease holder.
        lease = {"lease_holder": person, "lease_expires_at": timezone.now() + timedelta(hours=1)}
        if "lease_started_at" in lease_fields:
            lease["lease_started_at"] = timezone.now()
        ReviewItem.objects.filter(pk=item.pk).update(**lease)
        Review.objects.create(
            item=item,
            reviewer=person,
            decision="approve_edit" if kind == "needs_answer" else "approve",
            final_text=final if kind == "needs_answer" else None,
            accuracy=4,
            helpfulness=5 - i,
            safety=5,
        )
        ReviewItem.objects.filter(pk=item.pk).update(
            **{key: None for key in lease}, status="queued"
        )
    ReviewItem.objects.filter(pk=item.pk).update(status="done")
    return ReviewOutcome.objects.create(
        item=item,
        result=result,
        chosen=final if kind != "sft" else response,
        rejected=response if kind != "sft" else None,
    )


# --- a learnable task for the tiny model ----------------------------------------------------

ADJECTIVES = ["red", "blue", "green", "small", "large", "old", "new", "quiet", "bright", "warm"]
NOUNS = ["apples", "trains", "rivers", "invoices", "gardens", "laptops", "parcels", "songs"]
TOPICS = [f"{adjective} {noun}" for adjective in ADJECTIVES for noun in NOUNS]
# Several phrasings on each side, so a random base model has no consistent preference
# (one fixed template per side gives it 0.95 or 0.05 by accident) while "polite and
# structured beats rude" stays learnable.
POLITE = [
    "Thank you for asking about {t}. Here is a clear answer.",
    "Happy to help with {t}. First, a short summary.",
    "Good question about {t}. Let me explain step by step.",
]
RUDE = ["whatever, {t} are boring!!!", "no idea lol, {t}??", "ugh. {t}. go away."]


def tiny_lm(directory: Path) -> Path:
    """A tiny base model whose tokenizer was trained on the task's sentences."""
    from flywheel_site.demo.tinylm import build_tiny_lm

    corpus = [f"Tell me about {t}." for t in TOPICS] + [
        phrase.format(t=t) for phrase in POLITE + RUDE for t in TOPICS
    ]
    return build_tiny_lm(directory, corpus=corpus)


def preference_triples(topics: list[str], *, seed: int) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected) per topic: a polite answer preferred to a rude one."""
    rng = random.Random(seed)
    return [
        (f"Tell me about {t}.", rng.choice(POLITE).format(t=t), rng.choice(RUDE).format(t=t))
        for t in topics
    ]


def preference_rows(
    *, conversational: bool, topics: list[str] = TOPICS, seed: int = 0
) -> list[dict]:
    """The triples as TRL DPO rows, conversational or standard."""
    rows = []
    for prompt, chosen, rejected in preference_triples(topics, seed=seed):
        if conversational:
            rows.append(
                {
                    "prompt": [{"role": "user", "content": prompt}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        else:
            # TRL joins prompt and completion with nothing between: the newline separates them.
            rows.append({"prompt": prompt + "\n", "chosen": chosen, "rejected": rejected})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def days_ago(n: float) -> datetime:
    return timezone.now() - timedelta(days=n)


def old() -> datetime:
    return days_ago(30)


# --- registry rows without training ----------------------------------------------------------


def frozen_version(admin, *, name="support", n=3, **dataset_options) -> DatasetVersion:
    dataset = services.dataset_create(name=name, user=admin, lag_days=0, **dataset_options)
    for _ in range(n):
        approved(occurred_at=timezone.now() - timedelta(days=1))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    return version


def registered(version, *, status="candidate", adapter="", promoted_at=None, **fields):
    """A model row as a finished run leaves it (the registry tests need no training)."""
    run = factories.training_run(version, status="succeeded", finished_at=timezone.now())
    name = fields.pop("name", f"{version.dataset.name}-v{version.number}-run{run.pk}")
    return ModelVersion.objects.create(
        name=name,
        serving_name=fields.pop("serving_name", name),
        run=run,
        dataset_version=version,
        method="dpo",
        base_model=fields.pop("base_model", "/models/base"),
        adapter_dir=adapter,
        status=status,
        gate_passed=fields.pop("gate_passed", True),
        promoted_at=promoted_at or (timezone.now() if status == "promoted" else None),
        **fields,
    )


# --- fixtures (this module is a pytest plugin, registered in tests/conftest.py) ---------------


@pytest.fixture
def version(admin):
    """A frozen v1 of dataset "support" with three approved pairs."""
    return frozen_version(admin)


@pytest.fixture
def run(version):
    return factories.training_run(
        version,
        stage="train",
        started_at=timezone.now(),
        progress_step=12,
        progress_total=30,
        progress_loss=0.5123,
        loss_curve=[[1, 0.6931], [6, 0.66], [12, 0.5123]],
        log="step 12/30 loss=0.5123\n",
    )


@pytest.fixture
def model(run):
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", finished_at=timezone.now())
    return ModelVersion.objects.create(
        name="support-v1-run1",
        serving_name="support-v1-run1",
        run=run,
        dataset_version=run.dataset_version,
        method="dpo",
        base_model="/models/base",
        adapter_dir="/models/runs/run-1/adapter",
        metrics={"normalised_accuracy": 0.8, "implicit_reward_accuracy": 0.9, "reward_margin": 2},
        baseline_metrics={"normalised_accuracy": 0.5, "implicit_reward_accuracy": 0.5},
        gate_metric="normalised_accuracy",
        gate_margin=0.02,
        gate_passed=True,
        gate_detail="passes: normalised_accuracy 0.8000 vs current 0.5000",
    )


@pytest.fixture(scope="session")
def task_lm() -> Path:
    """The tiny base model for the preference task, built once for this code (model_cache;
    it is only read)."""
    from flywheel_site.demo import tinylm

    return model_built("task-lm", sources=(Path(__file__), Path(tinylm.__file__)), build=tiny_lm)
