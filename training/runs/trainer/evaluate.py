"""Evaluating preferences: the summed and length-normalised completion log-probs of chosen
versus rejected under a model (and a reference), pair by pair, for the gate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.errors import TrainingError
from training.runs.trainer.data import (
    ERR_NO_PAIRS,
    SKIP_REASONS,
    check_base_model,
    encode_pair,
    pair_fit,
    read_jsonl,
)


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


# Stays whole: load, score both arms batch by batch, aggregate; the model stays loaded
# for the whole pass.
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

    base = check_base_model(model_dir_or_base)
    eval_path = Path(eval_file)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    chosen_seqs, rejected_seqs, indices, truncated, skipped = _encode_eval_pairs(
        tokenizer, read_jsonl(eval_path), max_length=max_length
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
        prompt_ids, chosen_ids, rejected_ids = encode_pair(tokenizer, example)
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
