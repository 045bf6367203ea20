"""Toxicity scoring for the curation circuit breaker.

The winning answer of a candidate is scored by Detoxify; the filter discards it when a score
exceeds its threshold. Loading a transformer costs seconds and hundreds of MB, so a scorer is
loaded once per worker process and cached by its config. When Detoxify cannot be loaded the
module either falls back to alt-profanity-check (only if the settings allow it, and loudly:
``scorer_status()`` reports it for /healthz and the UI) or raises ``ToxicityUnavailable`` so the
caller holds the candidates. Nothing here returns a result for a text it did not score.

Framework-free on purpose: config comes in as a ``ToxicityConfig``, so the scorer runs the same in
an RQ worker, a management command, a benchmark and a test.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from curation import onnx_runtime

DETOXIFY_MODELS = ("original", "unbiased", "multilingual")
# torch: the checkpoint as trained (fp32). onnx: exported once to ONNX with int8 weights and
# run by ONNX Runtime (curation/onnx_runtime.py): several times faster, scores differ slightly.
TOXICITY_RUNTIMES = ("torch", "onnx")

TOXICITY_UNAVAILABLE = "toxicity model could not be loaded; candidates are held until it can"
TOXICITY_SCORING_FAILED = "toxicity scorer returned an unusable result; candidates are held"
TOXICITY_FALLBACK_WARNING = (
    "toxicity model could not be loaded; the lighter alt-profanity-check classifier is deciding"
)
NO_CHECKPOINT = (
    "no toxicity checkpoint configured (FLYWHEEL_TOXICITY_CHECKPOINT); "
    "Detoxify's weights are never downloaded"
)
UNKNOWN_MODEL = "toxicity model must be one of: original, unbiased, multilingual"
UNKNOWN_RUNTIME = "toxicity runtime must be one of: torch, onnx"
NO_ONNX_CACHE = "the onnx toxicity runtime needs a cache directory for its exported model"
BAD_BATCH_SIZE = "toxicity batch size must be a positive integer"
BAD_THRESHOLD = "toxicity threshold must be between 0 and 1"
MISSING_TOXICITY_SCORE = "scores have no finite 'toxicity' value"

PROFANITY_CHECK_NAME = "alt-profanity-check"


class ToxicityUnavailable(RuntimeError):
    """No scorer can be trusted right now: hold the candidates, never pass them unscored."""


class ToxicityScoringError(ToxicityUnavailable):
    """The scorer ran but its output cannot be trusted (wrong length, NaN, out of range)."""


@dataclass(frozen=True)
class ToxicityConfig:
    model: str = "original"
    checkpoint: str = ""
    config_dir: str = ""
    allow_fallback: bool = False
    device: str = "cpu"
    batch_size: int = 32
    runtime: str = "torch"
    onnx_cache_dir: str = ""

    def __post_init__(self) -> None:
        # Fail when settings are read, not on the first batch in a worker hours later.
        if self.model not in DETOXIFY_MODELS:
            raise ValueError(f"{UNKNOWN_MODEL} (got {self.model!r})")
        if self.runtime not in TOXICITY_RUNTIMES:
            raise ValueError(f"{UNKNOWN_RUNTIME} (got {self.runtime!r})")
        if self.runtime == "onnx" and not self.onnx_cache_dir:
            raise ValueError(NO_ONNX_CACHE)
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise ValueError(f"{BAD_BATCH_SIZE} (got {self.batch_size!r})")


@runtime_checkable
class Scorer(Protocol):
    name: str
    version: str
    labels: tuple[str, ...]
    # What ran the model ("torch", "onnx-int8", ...): recorded on every decision it scores.
    runtime: str

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        """Label -> probability in [0, 1] per text, in input order; always has "toxicity"."""
        ...


def _package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# The Jigsaw class names Detoxify "original" stores (it renames three when loading).
DETOXIFY_CLASSES = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


def detoxify_checkpoint_save(
    path: Path, *, state_dict: dict, config_dir: Path, classes=DETOXIFY_CLASSES
) -> Path:
    """Write a checkpoint in the layout detoxify's ``load_checkpoint`` reads (the one place
    that layout is written: test fixtures and benchmarks build their models through it).
    ``config_dir`` must hold the Hugging Face config and tokenizer: detoxify always calls
    ``from_pretrained(model_type)``. Written to a temporary name and renamed, so a checkpoint
    that exists is complete."""
    import torch

    partial = path.with_suffix(".partial")
    torch.save(
        {
            "config": {
                "arch": {
                    "args": {
                        "model_type": str(config_dir),
                        "model_name": "BertForSequenceClassification",
                        "tokenizer_name": "BertTokenizer",
                        "num_classes": len(classes),
                    }
                },
                "dataset": {"args": {"classes": list(classes)}},
            },
            "state_dict": state_dict,
        },
        partial,
    )
    partial.replace(path)
    return path


def _check_texts(texts: list[str]) -> None:
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {index} is {type(text).__name__}, not str")


def _checked(results: list[dict[str, float]], expected: int) -> list[dict[str, float]]:
    # The filter trusts these numbers to let answers through, so a scorer that returns the
    # wrong count or a NaN (which compares False against any threshold) must stop the batch.
    if len(results) != expected:
        raise ToxicityScoringError(
            f"{TOXICITY_SCORING_FAILED}: {len(results)} results for {expected} texts"
        )
    for index, scores in enumerate(results):
        if "toxicity" not in scores:
            raise ToxicityScoringError(f"{TOXICITY_SCORING_FAILED}: text {index} has no toxicity")
        for label, value in scores.items():
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ToxicityScoringError(
                    f"{TOXICITY_SCORING_FAILED}: text {index} {label}={value!r}"
                )
    return results


def _score_sorted(
    texts: list[str],
    *,
    batch_size: int,
    labels: tuple[str, ...],
    probabilities: Callable[[list[str]], list[list[float]]],
) -> list[dict[str, float]]:
    _check_texts(texts)
    results: list[dict[str, float] | None] = [None] * len(texts)
    # Sorting by length keeps padding (wasted compute) small inside each batch; the
    # attention mask makes padded and unpadded results equal, so order is restored after.
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        rows = probabilities([texts[index] for index in indices])
        for index, row in zip(indices, rows, strict=True):
            results[index] = dict(zip(labels, row, strict=True))
    return _checked([scores for scores in results if scores is not None], len(texts))


def _checkpoint_path(config: ToxicityConfig) -> Path:
    # Decided before Detoxify is called: given no checkpoint it downloads one from
    # GitHub, and nothing here may reach for the network (an offline worker or test
    # would wait on DNS, then fail anyway).
    if not config.checkpoint:
        raise FileNotFoundError(NO_CHECKPOINT)
    checkpoint = Path(config.checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"toxicity checkpoint not found: {checkpoint}")
    return checkpoint


class DetoxifyScorer:
    """Detoxify's model and tokenizer, run in length-sorted batches with explicit truncation.

    ``Detoxify.predict`` is not used: it squeezes a batch of one into bare floats, and it
    truncates only to ``tokenizer.model_max_length``, which is effectively unlimited for a
    tokenizer saved without it, so a long text would overflow the position embeddings.
    """

    runtime = "torch"

    def __init__(self, config: ToxicityConfig, *, checkpoint_sha256: str = "") -> None:
        checkpoint = _checkpoint_path(config)
        # Imported here, not at module level: the web process never pays for torch, and a
        # broken install surfaces as a load failure that the fallback rules handle.
        from detoxify import Detoxify

        detoxify = Detoxify(
            model_type=config.model,
            checkpoint=str(checkpoint),
            device=config.device,
            huggingface_config_path=config.config_dir or None,
        )
        self.model = detoxify.model
        self.model.eval()
        self.tokenizer = detoxify.tokenizer
        self.device = config.device
        self.batch_size = config.batch_size
        self.labels: tuple[str, ...] = tuple(detoxify.class_names)
        if "toxicity" not in self.labels:
            raise ValueError(f"checkpoint has no toxicity class (classes: {self.labels})")
        self.max_length = self._max_length()
        self.name = f"detoxify-{config.model}"
        self.version = (checkpoint_sha256 or _file_sha256(checkpoint))[:12]

    def _max_length(self) -> int:
        limits = [int(self.tokenizer.model_max_length)]
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions:
            # RoBERTa-style models (unbiased, multilingual) offset positions by padding_idx + 1.
            offset = getattr(self.model.config, "pad_token_id", None) or 0
            if self.model.config.model_type in ("roberta", "xlm-roberta"):
                positions -= offset + 1
            limits.append(int(positions))
        return min(limits)

    def _probabilities(self, texts: list[str]) -> list[list[float]]:
        import torch

        inputs = onnx_runtime.encode(
            self.tokenizer, texts, max_length=self.max_length, tensors="pt"
        ).to(self.device)
        return torch.sigmoid(self.model(**inputs).logits).float().cpu().tolist()

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        import torch

        with torch.inference_mode():
            return _score_sorted(
                texts,
                batch_size=self.batch_size,
                labels=self.labels,
                probabilities=self._probabilities,
            )


class OnnxDetoxifyScorer:
    """The same Detoxify checkpoint exported to ONNX with int8 weights (curation/onnx_runtime.py),
    exported on first use and cached under a key of the checkpoint's sha256 and its config."""

    runtime = onnx_runtime.RUNTIME_LABEL

    def __init__(self, config: ToxicityConfig) -> None:
        checkpoint = _checkpoint_path(config)
        sha256 = _file_sha256(checkpoint)
        key = onnx_runtime.cache_key(
            checkpoint_sha256=sha256, model=config.model, config_dir=config.config_dir
        )
        self.entry = Path(config.onnx_cache_dir) / key
        # True when this load exported the model, False when it found the export cached.
        self.exported = not (self.entry / onnx_runtime.META_FILE).is_file()
        if self.exported:
            source = DetoxifyScorer(config, checkpoint_sha256=sha256)
            onnx_runtime.onnx_model_export(
                model=source.model,
                tokenizer=source.tokenizer,
                labels=source.labels,
                max_length=source.max_length,
                entry=self.entry,
            )
        self.model = onnx_runtime.OnnxModel(self.entry)
        self.labels = self.model.labels
        self.batch_size = config.batch_size
        self.name = f"detoxify-{config.model}"
        self.version = sha256[:12]

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        return _score_sorted(
            texts,
            batch_size=self.batch_size,
            labels=self.labels,
            probabilities=self.model.probabilities,
        )


class ProfanityCheckScorer:
    """alt-profanity-check: a TF-IDF + linear model shipped inside the package, works offline.

    Much weaker than Detoxify (word-level profanity, no insults or threats without swearing),
    which is why it is used only when the settings allow it and always reported.
    """

    labels: tuple[str, ...] = ("toxicity",)
    runtime = "scikit-learn"

    def __init__(self) -> None:
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self.name = PROFANITY_CHECK_NAME
        self.version = _package_version("alt-profanity-check")

    def score_batch(self, texts: list[str]) -> list[dict[str, float]]:
        _check_texts(texts)
        if not texts:
            return []
        probabilities = self._predict_prob(list(texts))
        return _checked([{"toxicity": float(p)} for p in probabilities], len(texts))


_lock = threading.Lock()
_scorers: dict[ToxicityConfig, Scorer] = {}
_statuses: dict[ToxicityConfig, dict[str, Any]] = {}
_last_config: ToxicityConfig | None = None
_NOTHING_LOADED: dict[str, Any] = {
    "scorer": None,
    "version": None,
    "fallback": False,
    "error": None,
    "warning": None,
}


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def get_scorer(config: ToxicityConfig) -> Scorer:
    """The process-wide scorer for ``config``, loaded on first use.

    A failed load without fallback is not cached: the next batch tries again, so a worker
    recovers once the checkpoint appears without a restart. A fallback is cached for the life of
    the process, so one process never mixes scorers between batches; restart it to retry.
    """
    global _last_config
    with _lock:
        _last_config = config
        scorer = _scorers.get(config)
        if scorer is not None:
            return scorer
        try:
            scorer = (
                OnnxDetoxifyScorer(config) if config.runtime == "onnx" else DetoxifyScorer(config)
            )
        except Exception as error:  # any load failure (network, file, format) means the same
            cause = _describe(error)
            if not config.allow_fallback:
                _statuses[config] = {
                    "scorer": None,
                    "version": None,
                    "fallback": False,
                    "error": cause,
                    "warning": TOXICITY_UNAVAILABLE,
                }
                raise ToxicityUnavailable(f"{TOXICITY_UNAVAILABLE}: {cause}") from error
            try:
                scorer = ProfanityCheckScorer()
            except Exception as fallback_error:
                both = f"{cause}; fallback {_describe(fallback_error)}"
                _statuses[config] = {
                    "scorer": None,
                    "version": None,
                    "fallback": False,
                    "error": both,
                    "warning": TOXICITY_UNAVAILABLE,
                }
                raise ToxicityUnavailable(f"{TOXICITY_UNAVAILABLE}: {both}") from fallback_error
            _statuses[config] = {
                "scorer": scorer.name,
                "version": scorer.version,
                "fallback": True,
                "error": cause,
                "warning": TOXICITY_FALLBACK_WARNING,
            }
        else:
            _statuses[config] = {
                "scorer": scorer.name,
                "version": scorer.version,
                "fallback": False,
                "error": None,
                "warning": None,
            }
        _scorers[config] = scorer
        return scorer


def scorer_status(config: ToxicityConfig | None = None) -> dict[str, Any]:
    """What decides toxicity in this process: for /healthz and the UI warning.

    Keys: ``scorer`` (name, or None when nothing could be loaded or nothing was tried yet),
    ``version``, ``fallback``, ``error`` (the Detoxify load error) and ``warning`` (a
    user-facing message, None when all is well). Without ``config``: the last one requested.
    """
    with _lock:
        key = config if config is not None else _last_config
        status = _statuses.get(key) if key is not None else None
        if status is None:
            return {
                "scorer": None,
                "version": None,
                "fallback": False,
                "error": None,
                "warning": None,
            }
        return dict(status)


def reset_scorer_cache() -> None:
    global _last_config
    with _lock:
        _scorers.clear()
        _statuses.clear()
        _last_config = None


def toxicity_decision(
    scores: dict[str, float],
    *,
    threshold: float,
    per_label: dict[str, float] | None = None,
) -> tuple[bool, float, str]:
    """(passed, score, reason): fails when a checked label's score exceeds (>) its threshold.

    ``threshold`` applies to "toxicity"; ``per_label`` overrides it or adds other labels.
    A per-label threshold for a label the scorer does not produce is skipped, so configuring
    Detoxify's labels does not hold everything while the one-label fallback is deciding.
    ``score`` is the deciding label's value on failure, the toxicity score on a pass.
    Missing or non-finite toxicity raises ValueError: it must never read as a pass.
    """
    limits = {"toxicity": threshold, **(per_label or {})}
    for label, limit in limits.items():
        if not (math.isfinite(limit) and 0.0 <= limit <= 1.0):
            raise ValueError(f"{BAD_THRESHOLD} ({label}={limit!r})")
    toxicity = scores.get("toxicity")
    if toxicity is None or not math.isfinite(toxicity):
        raise ValueError(MISSING_TOXICITY_SCORE)

    exceeded: list[tuple[float, str, float, float]] = []
    for label, limit in limits.items():
        if label not in scores:
            continue
        value = scores[label]
        if not math.isfinite(value):
            raise ValueError(f"{MISSING_TOXICITY_SCORE} ({label}={value!r})")
        if value > limit:
            exceeded.append((value - limit, label, value, limit))
    if not exceeded:
        return True, toxicity, f"toxicity {toxicity:.4f} <= {limits['toxicity']:g}"
    exceeded.sort(key=lambda item: (-item[0], item[1]))
    reason = "; ".join(f"{label} {value:.4f} > {limit:g}" for _, label, value, limit in exceeded)
    return False, exceeded[0][2], reason
