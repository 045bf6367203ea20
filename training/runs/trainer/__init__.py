"""The built-in trainer: LoRA with TRL on a local base model and a preference eval.

Pure Python: plain paths and dicts in, dataclasses and dicts out, no Django. The job that owns
a `TrainingRun` row calls `train()`, then `evaluate_preferences()` for the candidate, then
the paired gate (training.registry.paired), and stores what comes back.

torch, transformers, trl, peft and datasets are imported inside the functions that use them:
they take seconds to import, and the web process imports this module only to read constants.

Three modules: `data` (config, checks, loading the splits, which pairs fit), `fit` (DPO or
SFT with LoRA) and `evaluate` (preference scores for the gate). Their public names are
re-exported here."""

from training.runs.trainer.data import (
    ERR_BASE_MODEL_MISSING,
    ERR_DPO_COLUMNS,
    ERR_EMPTY_DATASET,
    ERR_FORMAT_MISMATCH,
    ERR_MISSING_FILE,
    ERR_NO_PAIRS,
    ERR_NOTHING_FITS,
    ERR_SFT_COLUMNS,
    ERR_UNKNOWN_METHOD,
    EVAL_POINTS,
    GATE_METRICS,
    METHODS,
    NOTE_DROPPED,
    NOTE_NO_EVAL_LOSS,
    NOTE_TRUNCATED,
    SKIP_ANSWER_FILLS,
    SKIP_EMPTY_ANSWER,
    SKIP_REASONS,
    TRUNCATION_MODE,
    TrainConfig,
    TrainResult,
    pair_fit,
)
from training.runs.trainer.evaluate import (
    evaluate_preferences,
)
from training.runs.trainer.fit import (
    ProgressCallback,
    train,
)

__all__ = [
    "ERR_BASE_MODEL_MISSING",
    "ERR_DPO_COLUMNS",
    "ERR_EMPTY_DATASET",
    "ERR_FORMAT_MISMATCH",
    "ERR_MISSING_FILE",
    "ERR_NOTHING_FITS",
    "ERR_NO_PAIRS",
    "ERR_SFT_COLUMNS",
    "ERR_UNKNOWN_METHOD",
    "EVAL_POINTS",
    "GATE_METRICS",
    "METHODS",
    "NOTE_DROPPED",
    "NOTE_NO_EVAL_LOSS",
    "NOTE_TRUNCATED",
    "SKIP_ANSWER_FILLS",
    "SKIP_EMPTY_ANSWER",
    "SKIP_REASONS",
    "TRUNCATION_MODE",
    "ProgressCallback",
    "TrainConfig",
    "TrainResult",
    "evaluate_preferences",
    "pair_fit",
    "train",
]
