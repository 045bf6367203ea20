"""The built-in trainer: LoRA with TRL on a local base model, a preference eval, the gate.

Pure Python: plain paths and dicts in, dataclasses and dicts out, no Django. The job that owns
a `TrainingRun` row calls `train()`, then `evaluate_preferences()` for the candidate, then
`gate()`, and stores what comes back.

torch, transformers, trl, peft and datasets are imported inside the functions that use them:
they take seconds to import, and the web process imports this module only to read constants.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from training.errors import TrainingError

METHODS = ("dpo", "sft")
TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
GATE_METRICS = ("normalised_accuracy", "implicit_reward_accuracy", "reward_margin")
# Room for float noise in `candidate - current >= margin` (0.6 - 0.5 is 0.0999...).
GATE_TOLERANCE = 1e-9

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
    "None of the {total} examples in {path} can be trained on: each prompt alone fills "
    "max_length={max_length} tokens, and TRL drops such pairs. Raise "
    "FLYWHEEL_TRAINING_MAX_LENGTH (or shorten the prompts)."
)
NOTE_DROPPED = (
    "training on {kept} of {total} examples: the prompts of the others alone fill "
    "max_length={max_length} tokens and TRL drops them (raise FLYWHEEL_TRAINING_MAX_LENGTH "
    "to keep them)"
)
NOTE_NO_EVAL_LOSS = "no eval loss during training: {why}"
# How many times an eval split is scored while training (for the eval-loss curve).
EVAL_POINTS = 5
ERR_GATE_METRIC = "Metric {metric!r} is missing from the candidate or the current metrics."
ERR_GATE_NEGATIVE_MARGIN = "The gate margin must be zero or more, got {margin}."


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


def _check_trainable(dataset, *, tokenizer, config: TrainConfig, path: Path) -> int:
    """How many examples TRL will train on, refused at once when there are none: TRL's DPO
    drops every pair whose prompt alone fills max_length, and on an empty result it dies
    deep inside with `num_samples=0`."""
    total = len(dataset)
    if config.method == "dpo":
        kept = sum(
            len(_encode_pair(tokenizer, example)[0]) < config.max_length for example in dataset
        )
    else:
        kept = total  # SFT truncates long examples and keeps them
    if kept == 0:
        raise TrainingError(
            ERR_NOTHING_FITS.format(path=path, total=total, max_length=config.max_length)
        )
    return kept


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
        _check_trainable(dataset, tokenizer=tokenizer, config=config, path=path)
    except TrainingError as error:
        return None, error.message
    return dataset, ""


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

        args = Config(beta=config.beta, **common)
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
        kept = _check_trainable(dataset, tokenizer=tokenizer, config=config, path=train_path)
        if kept < len(dataset):
            callback.line(
                NOTE_DROPPED.format(kept=kept, total=len(dataset), max_length=config.max_length)
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
    - `n` pairs scored, `skipped` pairs whose prompt fills `max_length` (as TRL drops them).
    """
    from transformers import AutoTokenizer

    base = _check_base_model(model_dir_or_base)
    eval_path = Path(eval_file)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chosen_seqs, rejected_seqs, skipped = _encode_eval_pairs(
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
    return {"skipped": skipped, **_preference_metrics(scored)}


def _encode_eval_pairs(tokenizer, examples: list[dict[str, Any]], *, max_length: int):
    """(chosen sequences, rejected sequences, pairs skipped), each sequence (ids,
    prompt length), truncated to max_length."""
    chosen_seqs: list[tuple[list[int], int]] = []
    rejected_seqs: list[tuple[list[int], int]] = []
    skipped = 0
    for example in examples:
        prompt_ids, chosen_ids, rejected_ids = _encode_pair(tokenizer, example)
        # Keep the start, as TRL's default truncation does; a pair with no completion token
        # left carries no signal.
        if len(prompt_ids) >= max_length or not chosen_ids or not rejected_ids:
            skipped += 1
            continue
        chosen_seqs.append(((prompt_ids + chosen_ids)[:max_length], len(prompt_ids)))
        rejected_seqs.append(((prompt_ids + rejected_ids)[:max_length], len(prompt_ids)))
    return chosen_seqs, rejected_seqs, skipped


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
    normalised_hits = reference_hits = reward_hits = 0
    margins: list[float] = []
    mean_chosen: list[float] = []
    mean_rejected: list[float] = []
    for i in range(n):
        (pc, pc_len), (pr, pr_len) = scored["policy_chosen"][i], scored["policy_rejected"][i]
        (rc, rc_len), (rr, rr_len) = scored["reference_chosen"][i], scored["reference_rejected"][i]
        mean_chosen.append(pc / pc_len)
        mean_rejected.append(pr / pr_len)
        normalised_hits += pc / pc_len > pr / pr_len
        reference_hits += rc / rc_len > rr / rr_len
        margin = (pc - rc) - (pr - rr)
        reward_hits += margin > 0
        margins.append(margin)
    return {
        "n": n,
        "normalised_accuracy": normalised_hits / n,
        "implicit_reward_accuracy": reward_hits / n,
        "reward_margin": sum(margins) / n,
        "mean_logp_chosen": sum(mean_chosen) / n,
        "mean_logp_rejected": sum(mean_rejected) / n,
        "reference_normalised_accuracy": reference_hits / n,
    }


# --------------------------------------------------------------------------- gate


def gate(
    *,
    candidate: dict,
    current: dict,
    metric: str = "normalised_accuracy",
    margin: float = 0.0,
) -> tuple[bool, str]:
    """Pass only when the candidate beats the current model on `metric` by at least `margin`.

    "Beats" is strict: a tie never passes, even with margin 0, so a run that learned nothing
    is not promoted over the model it would replace. Compare like with like: use an absolute
    metric (`normalised_accuracy`) with both sides scored on the same eval split.
    """
    if margin < 0:
        raise TrainingError(ERR_GATE_NEGATIVE_MARGIN.format(margin=margin))
    if metric not in candidate or metric not in current:
        raise KeyError(ERR_GATE_METRIC.format(metric=metric))
    new, old = float(candidate[metric]), float(current[metric])
    delta = new - old
    passed = delta > 0 and delta >= margin - GATE_TOLERANCE
    verdict = "passes" if passed else "fails"
    return passed, (
        f"{verdict}: {metric} {new:.4f} vs current {old:.4f} "
        f"(difference {delta:+.4f}, required more than 0 and at least {margin:.4f})"
    )


__all__ = [
    "EVAL_FILE",
    "GATE_METRICS",
    "METHODS",
    "TRAIN_FILE",
    "TrainConfig",
    "TrainResult",
    "evaluate_preferences",
    "gate",
    "train",
]
