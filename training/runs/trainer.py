"""The built-in trainer: LoRA with TRL on a local base model and a preference eval.

Pure Python: plain paths and dicts in, dataclasses and dicts out, no Django. The job that owns
a `TrainingRun` row calls `train()`, then `evaluate_preferences()` for the candidate, then
the paired gate (training.registry.paired), and stores what comes back.

torch, transformers, trl, peft and datasets are imported inside the functions that use them:
they take seconds to import, and the web process imports this module only to read constants.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


# --------------------------------------------------------------------------- data


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


def _check_base_model(base_model_dir: Path) -> Path:
    # Absolute: adapter_config.json records the base path as given, and a relative one breaks
    # as soon as a worker runs from another directory.
    base = Path(base_model_dir).absolute()
    if not (base / "config.json").is_file():
        raise FileNotFoundError(ERR_BASE_MODEL_MISSING.format(path=base))
    return base


# --------------------------------------------------------------------------- train


def _ignore_event(*args, **kwargs) -> None:
    return None


class ProgressCallback:
    """Keeps the trainer's log lines, losses and eval losses; reports each optimiser step
    to `progress` as `{"step", "max_steps", "loss"}`, and each log line to `log` as it is
    written, as `{"at", "line", "step", "eval_loss"}` (`at`: when, in UTC; `eval_loss`:
    None but on an evaluation's line), so a job can show the log while training runs.

    A transformers callback by duck typing: the trainer calls `on_<event>(args, state,
    control, **kwargs)` on it for every event and only `on_log` matters here. It does not
    subclass TrainerCallback so that importing this module does not import transformers.
    """

    def __init__(
        self,
        progress: Callable[[dict], None] | None = None,
        log: Callable[[dict], None] | None = None,
    ):
        self.progress = progress
        self.log = log
        self.log_lines: list[str] = []
        self.losses: list[float] = []
        self.eval_losses: list[list[float]] = []

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return _ignore_event
        raise AttributeError(name)

    def line(self, text: str, *, step: int = 0, eval_loss: float | None = None) -> None:
        self.log_lines.append(text)
        if self.log is not None:
            self.log({"at": datetime.now(UTC), "line": text, "step": step, "eval_loss": eval_loss})

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        logs = dict(logs or {})
        logs.pop("total_flos", None)
        shown = " ".join(
            f"{key}={value:.5g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in sorted(logs.items())
        )
        eval_loss = float(logs["eval_loss"]) if "eval_loss" in logs else None
        if eval_loss is not None:
            self.eval_losses.append([state.global_step, eval_loss])
        self.line(
            f"step {state.global_step}/{state.max_steps} {shown}",
            step=state.global_step,
            eval_loss=eval_loss,
        )
        if "loss" in logs:
            loss = float(logs["loss"])
            self.losses.append(loss)
            if self.progress is not None:
                self.progress(
                    {"step": state.global_step, "max_steps": state.max_steps, "loss": loss}
                )


def _check_request(*, export_dir: Path, config: TrainConfig) -> Path:
    """The train file, after every check that needs no model: the method, the base model,
    the file and its rows."""
    if config.method not in METHODS:
        raise TrainingError(ERR_UNKNOWN_METHOD.format(method=config.method))
    _check_base_model(config.base_model_dir)
    train_path = Path(export_dir) / TRAIN_FILE
    if not train_path.is_file():
        raise FileNotFoundError(ERR_MISSING_FILE.format(export_dir=export_dir, name=TRAIN_FILE))
    # datasets fails on an empty JSON file with a bare StopIteration: say what is wrong instead.
    if not _has_rows(train_path):
        raise TrainingError(ERR_EMPTY_DATASET.format(path=train_path))
    return train_path


def _load_train_set(train_path: Path, *, config: TrainConfig, cache_dir: str):
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


def _trainable_indices(
    dataset, *, tokenizer, config: TrainConfig, path: Path
) -> tuple[list[int], int]:
    """The examples training keeps and how many of them are truncated, refused at once when
    none is kept: on an empty dataset TRL dies deep inside with `num_samples=0`."""
    total = len(dataset)
    if config.method != "dpo":
        return list(range(total)), 0  # SFT truncates long examples and keeps them
    fits = []
    for row in dataset:
        prompt_ids, chosen_ids, rejected_ids = _encode_pair(tokenizer, row)
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


def _load_eval_set(export_dir: Path, *, config: TrainConfig, tokenizer, cache_dir: str):
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
        kept, _ = _trainable_indices(dataset, tokenizer=tokenizer, config=config, path=path)
    except TrainingError as error:
        return None, error.message
    return (dataset.select(kept) if len(kept) < len(dataset) else dataset), ""


def _training_args(config: TrainConfig, output_dir: Path) -> dict[str, Any]:
    """Arguments shared by DPOConfig and SFTConfig."""
    return {
        "output_dir": str(output_dir),
        "max_steps": config.steps,
        "per_device_train_batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "max_length": config.max_length,
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        # TRL defaults to bf16 and gradient checkpointing, both wrong for a CPU worker.
        # transformers 5 renamed gradient_checkpointing (now a deprecated alias, which
        # warns) to activation_checkpointing; setting the new name turns both off.
        "bf16": False,
        "use_cpu": True,
        "activation_checkpointing": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def _build_trainer(
    *,
    dataset,
    tokenizer,
    config: TrainConfig,
    output_dir: Path,
    callback: ProgressCallback,
    eval_dataset=None,
):
    """A TRL DPOTrainer or SFTTrainer with a fresh LoRA adapter on the base model."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import PrinterCallback

    torch.manual_seed(config.seed)
    base = _check_base_model(config.base_model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    common = _training_args(config, output_dir)
    if eval_dataset is not None:
        common.update(
            eval_strategy="steps",
            eval_steps=max(1, config.steps // EVAL_POINTS),
            per_device_eval_batch_size=config.batch_size,
        )
    if config.method == "dpo":
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer

        with warnings.catch_warnings():
            # TRL marks keep_end deprecated; keep_start would drop long pairs silently.
            warnings.filterwarnings("ignore", message=".*keep_end.*", category=FutureWarning)
            args = Config(beta=config.beta, truncation_mode=TRUNCATION_MODE, **common)
    else:
        from trl import SFTConfig as Config
        from trl import SFTTrainer as Trainer

        args = Config(packing=False, **common)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[callback],
    )
    # Our callback keeps the log; the default printer would repeat it on the worker's stdout.
    trainer.remove_callback(PrinterCallback)
    return trainer


def train(
    *,
    export_dir: Path,
    config: TrainConfig,
    progress: Callable[[dict], None] | None = None,
    log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `export_dir/train.jsonl` and save it to `config.output_dir`.

    `progress` is called after every optimiser step with `{"step", "max_steps", "loss"}`; an
    exception it raises stops training, which is how a job can abandon a cancelled run.
    `log` is called with each log line as it is written (see ProgressCallback). When
    `export_dir/eval.jsonl` holds usable rows, its loss is logged EVAL_POINTS times.
    """
    train_path = _check_request(export_dir=export_dir, config=config)
    output_dir = Path(config.output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    callback = ProgressCallback(progress, log)

    from transformers import AutoTokenizer

    # A private datasets cache, deleted afterwards: the shared one under ~/.cache would grow
    # with a copy of every export ever trained, and TRL's tokenised maps land beside it.
    with tempfile.TemporaryDirectory(prefix="flywheel-datasets-") as cache_dir:
        dataset, conversational = _load_train_set(train_path, config=config, cache_dir=cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(_check_base_model(config.base_model_dir)))
        kept, truncated = _trainable_indices(
            dataset, tokenizer=tokenizer, config=config, path=train_path
        )
        total = len(dataset)
        if len(kept) < total:
            callback.line(
                NOTE_DROPPED.format(kept=len(kept), total=total, max_length=config.max_length)
            )
            dataset = dataset.select(kept)
        if truncated:
            callback.line(
                NOTE_TRUNCATED.format(
                    truncated=truncated, total=total, max_length=config.max_length
                )
            )
        eval_dataset, no_eval = _load_eval_set(
            Path(export_dir), config=config, tokenizer=tokenizer, cache_dir=cache_dir
        )
        if eval_dataset is None:
            callback.line(NOTE_NO_EVAL_LOSS.format(why=no_eval))
        trainer = _build_trainer(
            dataset=dataset,
            tokenizer=tokenizer,
            config=config,
            output_dir=output_dir,
            callback=callback,
            eval_dataset=eval_dataset,
        )
        started = time.monotonic()
        trainer.train()
        train_seconds = time.monotonic() - started
        trainer.save_model(str(output_dir))
        steps = int(trainer.state.global_step)
        n_train = len(dataset)
        del trainer

    losses = callback.losses
    return TrainResult(
        adapter_dir=output_dir,
        method=config.method,
        conversational=conversational,
        n_train=n_train,
        steps=steps,
        losses=losses,
        first_loss=losses[0] if losses else math.nan,
        final_loss=losses[-1] if losses else math.nan,
        log_lines=callback.log_lines,
        train_seconds=train_seconds,
        eval_losses=callback.eval_losses,
    )


# --------------------------------------------------------------------------- evaluate


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _common_prefix_length(ids: list[int], other: list[int]) -> int:
    length = 0
    for token, other_token in zip(ids, other, strict=False):
        if token != other_token:
            break
        length += 1
    return length


def _encode_pair(tokenizer, example: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
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


@contextlib.contextmanager
def _active_adapter(model, adapter: str | None) -> Iterator[None]:
    """Run `model` with one named LoRA adapter on, or with every adapter off (the base)."""
    if not hasattr(model, "disable_adapter"):
        yield
    elif adapter is None:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(adapter)
        yield


def _completion_logps(
    model, sequences: list[tuple[list[int], int]], *, pad_id: int, batch_size: int
) -> list[tuple[float, int]]:
    """(sum of completion-token log-probs, completion length) for each (ids, prompt_len)."""
    import torch

    results: list[tuple[float, int]] = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        completion = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, (ids, prompt_len) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            completion[row, prompt_len : len(ids)] = True
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
        # Position t predicts token t + 1.
        logps = torch.log_softmax(logits[:, :-1], dim=-1)
        token_logps = logps.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        mask = completion[:, 1:]
        sums = (token_logps * mask).sum(dim=-1)
        counts = mask.sum(dim=-1)
        results.extend(zip(sums.tolist(), counts.tolist(), strict=True))
    return results


def evaluate_preferences(
    *,
    model_dir_or_base: Path,
    adapter_dir: Path | None,
    eval_file: Path,
    reference_adapter_dir: Path | None = None,
    max_length: int = 128,
    batch_size: int = 16,
) -> dict[str, float | int]:
    """Score a model (base + `adapter_dir`) on held-out preference pairs against a reference.

    `model_dir_or_base` is the base model directory. The policy is the base with `adapter_dir`
    on (the base alone if None). The reference is the base with `reference_adapter_dir` on
    (the currently promoted model) or the base alone (first run).

    Returns:
    - `normalised_accuracy`: share of pairs where the policy's mean per-token log-prob of the
      chosen completion is above the rejected one's. Absolute (no reference), so it compares
      across models; a summed log-prob would penalise longer chosen answers.
    - `implicit_reward_accuracy`: share of pairs where the DPO implicit reward
      (policy minus reference summed log-prob) of chosen is strictly above rejected: what DPO
      optimises, and TRL's `rewards/accuracies`. Relative to the reference: a model scored
      against itself gets 0.0, since every reward is 0 and ties count as misses.
    - `reward_margin`: mean of chosen-minus-rejected implicit reward, without beta (multiply by
      the training beta to get TRL's `rewards/margins`).
    - `mean_logp_chosen`, `mean_logp_rejected`: policy mean per-token log-probs, averaged.
    - `reference_normalised_accuracy`: `normalised_accuracy` of the reference, computed on the
      way, so one call gives both sides of the gate.
    - `n` pairs scored; `truncated` of them longer than `max_length`, cut from the left as
      the trainer cuts them (the prompt loses its start, the answers are kept); `skipped`
      pairs that carry no signal even truncated, with `skipped_reasons` ({SKIP_*: count}).
    - `per_pair`: the same pair by pair, for the paired gate: `index` (line in the eval
      file), `policy_hit` and `reference_hit` (1 where the normalised log-prob of chosen is
      above rejected's), `reward_hit` (1 where the implicit reward margin is positive) and
      `margin`. Not meant to be stored.
    """
    from transformers import AutoTokenizer

    base = _check_base_model(model_dir_or_base)
    eval_path = Path(eval_file)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chosen_seqs, rejected_seqs, indices, truncated, skipped = _encode_eval_pairs(
        tokenizer, _read_jsonl(eval_path), max_length=max_length
    )
    if not chosen_seqs:
        raise TrainingError(ERR_NO_PAIRS.format(path=eval_path, max_length=max_length))

    model, policy_adapter, reference_adapter = _scoring_model(
        base, adapter_dir=adapter_dir, reference_adapter_dir=reference_adapter_dir
    )
    scored: dict[str, list[tuple[float, int]]] = {}
    for side, adapter in (("policy", policy_adapter), ("reference", reference_adapter)):
        with _active_adapter(model, adapter):
            for kind, seqs in (("chosen", chosen_seqs), ("rejected", rejected_seqs)):
                scored[f"{side}_{kind}"] = _completion_logps(
                    model, seqs, pad_id=pad_id, batch_size=batch_size
                )
    del model
    metrics = _preference_metrics(scored)
    metrics["per_pair"]["index"] = indices
    return {
        "truncated": truncated,
        "skipped": sum(skipped.values()),
        "skipped_reasons": skipped,
        **metrics,
    }


def _truncated(prompt_ids: list[int], answer_ids: list[int], max_length: int):
    """(ids, prompt length within them): the sequence cut from the left to max_length, as
    TRL's collator cuts it with truncation_mode="keep_end"."""
    ids = (prompt_ids + answer_ids)[-max_length:]
    return ids, len(ids) - len(answer_ids)


def _encode_eval_pairs(tokenizer, examples: list[dict[str, Any]], *, max_length: int):
    """The pairs to score and what became of the others: (chosen sequences, rejected
    sequences, index in `examples` of each scored pair, truncated count, {reason: skipped
    count}). Each sequence is (ids, prompt length)."""
    chosen_seqs: list[tuple[list[int], int]] = []
    rejected_seqs: list[tuple[list[int], int]] = []
    indices: list[int] = []
    truncated = 0
    skipped: dict[str, int] = {}
    for index, example in enumerate(examples):
        prompt_ids, chosen_ids, rejected_ids = _encode_pair(tokenizer, example)
        fit = pair_fit(
            prompt=len(prompt_ids),
            chosen=len(chosen_ids),
            rejected=len(rejected_ids),
            max_length=max_length,
        )
        if fit in SKIP_REASONS:
            skipped[fit] = skipped.get(fit, 0) + 1
            continue
        truncated += fit == "truncated"
        chosen_seqs.append(_truncated(prompt_ids, chosen_ids, max_length))
        rejected_seqs.append(_truncated(prompt_ids, rejected_ids, max_length))
        indices.append(index)
    return chosen_seqs, rejected_seqs, indices, truncated, skipped


def _scoring_model(base: Path, *, adapter_dir: Path | None, reference_adapter_dir: Path | None):
    """The base model with the policy and reference adapters loaded by name, and the name
    of each (None: the base alone plays that side)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    policy_adapter = reference_adapter = None
    # One base in memory with both adapters loaded by name, rather than two copies of the base.
    if adapter_dir is not None or reference_adapter_dir is not None:
        from peft import PeftModel

        named = [("policy", adapter_dir), ("reference", reference_adapter_dir)]
        named = [(name, Path(path)) for name, path in named if path is not None]
        model = PeftModel.from_pretrained(model, str(named[0][1]), adapter_name=named[0][0])
        for name, path in named[1:]:
            model.load_adapter(str(path), adapter_name=name)
        policy_adapter = "policy" if adapter_dir is not None else None
        reference_adapter = "reference" if reference_adapter_dir is not None else None
    model.eval()
    return model, policy_adapter, reference_adapter


def _preference_metrics(scored: dict[str, list[tuple[float, int]]]) -> dict[str, float | int]:
    """The metrics evaluate_preferences documents, from the summed completion log-probs."""
    n = len(scored["policy_chosen"])
    policy_hits: list[int] = []
    reference_hits: list[int] = []
    reward_hits: list[int] = []
    margins: list[float] = []
    mean_chosen: list[float] = []
    mean_rejected: list[float] = []
    for i in range(n):
        (pc, pc_len), (pr, pr_len) = scored["policy_chosen"][i], scored["policy_rejected"][i]
        (rc, rc_len), (rr, rr_len) = scored["reference_chosen"][i], scored["reference_rejected"][i]
        mean_chosen.append(pc / pc_len)
        mean_rejected.append(pr / pr_len)
        policy_hits.append(int(pc / pc_len > pr / pr_len))
        reference_hits.append(int(rc / rc_len > rr / rr_len))
        margin = (pc - rc) - (pr - rr)
        reward_hits.append(int(margin > 0))
        margins.append(margin)
    return {
        "n": n,
        "normalised_accuracy": sum(policy_hits) / n,
        "implicit_reward_accuracy": sum(reward_hits) / n,
        "reward_margin": sum(margins) / n,
        "mean_logp_chosen": sum(mean_chosen) / n,
        "mean_logp_rejected": sum(mean_rejected) / n,
        "reference_normalised_accuracy": sum(reference_hits) / n,
        "per_pair": {
            "policy_hit": policy_hits,
            "reference_hit": reference_hits,
            "reward_hit": reward_hits,
            "margin": margins,
        },
    }


__all__ = [
    "EVAL_FILE",
    "GATE_METRICS",
    "METHODS",
    "TRAIN_FILE",
    "TrainConfig",
    "TrainResult",
    "evaluate_preferences",
    "pair_fit",
    "train",
]
