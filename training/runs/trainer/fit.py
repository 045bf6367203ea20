"""Fitting: DPO or SFT with LoRA through TRL, with progress reported to the run row."""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.runs.trainer.data import (
    EVAL_POINTS,
    NOTE_DROPPED,
    NOTE_NO_EVAL_LOSS,
    NOTE_TRUNCATED,
    TRUNCATION_MODE,
    TrainConfig,
    TrainResult,
    check_base_model,
    check_request,
    load_eval_set,
    load_train_set,
    trainable_indices,
)


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
    base = check_base_model(config.base_model_dir)
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


# Stays whole: the TRL run from checks to the saved adapter; the callbacks and cleanup
# wrap the same trainer object.
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
    train_path = check_request(export_dir=export_dir, config=config)
    output_dir = Path(config.output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    callback = ProgressCallback(progress, log)

    from transformers import AutoTokenizer

    # A private datasets cache, deleted afterwards: the shared one under ~/.cache would grow
    # with a copy of every export ever trained, and TRL's tokenised maps land beside it.
    with tempfile.TemporaryDirectory(prefix="flywheel-datasets-") as cache_dir:
        dataset, conversational = load_train_set(train_path, config=config, cache_dir=cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(check_base_model(config.base_model_dir)))
        kept, truncated = trainable_indices(
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
        eval_dataset, no_eval = load_eval_set(
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
