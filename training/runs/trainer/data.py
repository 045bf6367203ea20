"""Data preparation for the built-in trainer: the constants and config, checks of the export
directory and base model, loading the train and eval splits, and which pairs fit `max_length`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.datasets.files import EVAL_FILE, TRAIN_FILE
from training.errors import TrainingError

METHODS = ("dpo", "sft")


GATE_METRICS = ("normalised_accuracy", "implicit_reward_accuracy", "reward_margin")


ERR_UNKNOWN_METHOD = "Unknown training method {method!r}: expected 'dpo' or 'sft'."


ERR_BASE_MODEL_MISSING = "Base model directory {path} does not exist or has no config.json."


ERR_MISSING_FILE = "The export directory {export_dir} has no {name}."


ERR_EMPTY_DATASET = "{path} holds no examples."


ERR_DPO_COLUMNS = "DPO needs prompt, chosen and rejected fields; {path} has {columns}."


ERR_SFT_COLUMNS = (
    "SFT needs a messages field (or prompt and completion, or text); {path} has {columns}."
)


ERR_FORMAT_MISMATCH = "The config says conversational={expected} but {path} is {actual}."


ERR_NO_PAIRS = "{path} has no preference pairs that fit in max_length={max_length}."


ERR_NOTHING_FITS = (
    "None of the {total} examples in {path} can be trained on: truncated to "
    "max_length={max_length} tokens, nothing of their prompt or answer is left. Raise "
    "FLYWHEEL_TRAINING_MAX_LENGTH (or shorten the answers)."
)


NOTE_DROPPED = (
    "training on {kept} of {total} examples: truncated to max_length={max_length} tokens, "
    "nothing of the others' prompt or answer is left (raise FLYWHEEL_TRAINING_MAX_LENGTH "
    "to keep them)"
)


NOTE_NO_EVAL_LOSS = "no eval loss during training: {why}"


# How many times an eval split is scored while training (for the eval-loss curve).
EVAL_POINTS = 5


NOTE_TRUNCATED = (
    "{truncated} of {total} examples are longer than max_length={max_length} tokens: their "
    "prompt is cut from the left, their answers kept"
)


# Why a pair can carry no signal even truncated; the keys are stored in the eval metrics.
SKIP_EMPTY_ANSWER = "empty_answer"


SKIP_ANSWER_FILLS = "answer_fills_max_length"


SKIP_REASONS = {
    SKIP_EMPTY_ANSWER: "the chosen or the rejected answer has no token",
    SKIP_ANSWER_FILLS: (
        "an answer alone fills max_length, so nothing of the prompt is left "
        "(raise FLYWHEEL_TRAINING_MAX_LENGTH)"
    ),
}


# TRL's collator cuts a too-long sequence; "keep_end" cuts it from the left, so the prompt
# loses its start and the answers, which carry the preference, are kept whole. TRL's default
# ("keep_start") instead drops every pair whose prompt alone fills max_length, silently.
TRUNCATION_MODE = "keep_end"


@dataclass
class TrainConfig:
    method: Literal["dpo", "sft"]
    base_model_dir: Path
    output_dir: Path
    steps: int = 30
    batch_size: int = 8
    # TRL's defaults (1e-6 for DPO) barely move a LoRA adapter in a few dozen steps.
    learning_rate: float = 5e-3
    lora_r: int = 8
    lora_alpha: int = 16
    max_length: int = 128
    beta: float = 0.1
    seed: int = 0
    # None: detect from the first example. True/False: the data must match, or train() refuses.
    conversational: bool | None = None


@dataclass
class TrainResult:
    adapter_dir: Path
    method: str
    conversational: bool
    n_train: int
    steps: int
    losses: list[float]
    first_loss: float
    final_loss: float
    log_lines: list[str]
    train_seconds: float
    # [[step, eval loss], ...] at the eval steps; empty when there was no eval split.
    eval_losses: list[list[float]] = field(default_factory=list)

    @property
    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for a JSONField on the run row."""
        return {
            "adapter_dir": str(self.adapter_dir),
            "method": self.method,
            "conversational": self.conversational,
            "n_train": self.n_train,
            "steps": self.steps,
            "losses": self.losses,
            "first_loss": self.first_loss,
            "final_loss": self.final_loss,
            "train_seconds": self.train_seconds,
            "eval_losses": self.eval_losses,
        }


def _is_conversational(example: dict[str, Any]) -> bool:
    from trl.data_utils import is_conversational

    return bool(is_conversational(example))


def _check_columns(*, method: str, columns: list[str], path: Path) -> None:
    present = set(columns)
    if method == "dpo" and not {"prompt", "chosen", "rejected"} <= present:
        raise TrainingError(ERR_DPO_COLUMNS.format(path=path, columns=sorted(present)))
    if method == "sft" and not (
        "messages" in present or {"prompt", "completion"} <= present or "text" in present
    ):
        raise TrainingError(ERR_SFT_COLUMNS.format(path=path, columns=sorted(present)))


def _has_rows(path: Path) -> bool:
    with open(path, encoding="utf-8") as handle:
        return any(line.strip() for line in handle)


def _describe(conversational: bool) -> str:
    return "conversational" if conversational else "standard (plain strings)"


def check_base_model(base_model_dir: Path) -> Path:
    # Absolute: adapter_config.json records the base path as given, and a relative one breaks
    # as soon as a worker runs from another directory.
    base = Path(base_model_dir).absolute()
    if not (base / "config.json").is_file():
        raise FileNotFoundError(ERR_BASE_MODEL_MISSING.format(path=base))
    return base


def check_request(*, export_dir: Path, config: TrainConfig) -> Path:
    """The train file, after every check that needs no model: the method, the base model,
    the file and its rows."""
    if config.method not in METHODS:
        raise TrainingError(ERR_UNKNOWN_METHOD.format(method=config.method))
    check_base_model(config.base_model_dir)
    train_path = Path(export_dir) / TRAIN_FILE
    if not train_path.is_file():
        raise FileNotFoundError(ERR_MISSING_FILE.format(export_dir=export_dir, name=TRAIN_FILE))
    # datasets fails on an empty JSON file with a bare StopIteration: say what is wrong instead.
    if not _has_rows(train_path):
        raise TrainingError(ERR_EMPTY_DATASET.format(path=train_path))
    return train_path


def load_train_set(train_path: Path, *, config: TrainConfig, cache_dir: str):
    """The train split as a datasets.Dataset, and whether it is conversational."""
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(train_path), split="train", cache_dir=cache_dir)
    _check_columns(method=config.method, columns=dataset.column_names, path=train_path)
    conversational = _is_conversational(dataset[0])
    if config.conversational is not None and config.conversational != conversational:
        raise TrainingError(
            ERR_FORMAT_MISMATCH.format(
                expected=config.conversational, path=train_path, actual=_describe(conversational)
            )
        )
    return dataset, conversational


def pair_fit(*, prompt: int, chosen: int, rejected: int, max_length: int) -> str:
    """How a pair of these token lengths fares under max_length: "fits", "truncated" (its
    prompt is cut from the left) or the SKIP_* reason it carries no signal."""
    if not chosen or not rejected:
        return SKIP_EMPTY_ANSWER
    if max(chosen, rejected) >= max_length:
        return SKIP_ANSWER_FILLS
    if prompt + max(chosen, rejected) > max_length:
        return "truncated"
    return "fits"


def trainable_indices(
    dataset, *, tokenizer, config: TrainConfig, path: Path
) -> tuple[list[int], int]:
    """The examples training keeps and how many of them are truncated, refused at once when
    none is kept: on an empty dataset TRL dies deep inside with `num_samples=0`."""
    total = len(dataset)
    if config.method != "dpo":
        return list(range(total)), 0  # SFT truncates long examples and keeps them
    fits = []
    for row in dataset:
        prompt_ids, chosen_ids, rejected_ids = encode_pair(tokenizer, row)
        fits.append(
            pair_fit(
                prompt=len(prompt_ids),
                chosen=len(chosen_ids),
                rejected=len(rejected_ids),
                max_length=config.max_length,
            )
        )
    kept = [i for i, fit in enumerate(fits) if fit in ("fits", "truncated")]
    if not kept:
        raise TrainingError(
            ERR_NOTHING_FITS.format(path=path, total=total, max_length=config.max_length)
        )
    return kept, fits.count("truncated")


def load_eval_set(export_dir: Path, *, config: TrainConfig, tokenizer, cache_dir: str):
    """The eval split to score while training (its loss is the eval curve), or None with
    why not: absent, empty, in another shape than the method trains on, or nothing in it
    fits max_length. Never fails the run: the gate scores the eval split afterwards."""
    from datasets import load_dataset

    path = Path(export_dir) / EVAL_FILE
    if not path.is_file() or not _has_rows(path):
        return None, f"{EVAL_FILE} is empty or missing"
    dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=cache_dir)
    try:
        _check_columns(method=config.method, columns=dataset.column_names, path=path)
        kept, _ = trainable_indices(dataset, tokenizer=tokenizer, config=config, path=path)
    except TrainingError as error:
        return None, error.message
    return (dataset.select(kept) if len(kept) < len(dataset) else dataset), ""


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _common_prefix_length(ids: list[int], other: list[int]) -> int:
    length = 0
    for token, other_token in zip(ids, other, strict=False):
        if token != other_token:
            break
        length += 1
    return length


def encode_pair(tokenizer, example: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """Prompt, chosen and rejected ids, split exactly the way TRL's DPOTrainer splits them.

    Matching TRL matters: the eval must score the same completion tokens the adapter was
    trained on, including the EOS that TRL appends to plain-string completions.
    """
    prompt = example["prompt"]
    if _is_conversational(example):

        def encode(messages, **kwargs):
            return list(
                tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)[
                    "input_ids"
                ]
            )

        prompt_ids = encode(prompt, add_generation_prompt=True)
        chosen_full = encode(prompt + example["chosen"])
        rejected_full = encode(prompt + example["rejected"])
    else:
        eos = tokenizer.eos_token or ""

        def with_eos(text: str) -> str:
            return text if text.endswith(eos) else text + eos

        prompt_ids = list(tokenizer(prompt)["input_ids"])
        chosen_full = list(tokenizer(prompt + with_eos(example["chosen"]))["input_ids"])
        rejected_full = list(tokenizer(prompt + with_eos(example["rejected"]))["input_ids"])
    prompt_len = min(
        _common_prefix_length(prompt_ids, chosen_full),
        _common_prefix_length(prompt_ids, rejected_full),
    )
    return prompt_ids[:prompt_len], chosen_full[prompt_len:], rejected_full[prompt_len:]
