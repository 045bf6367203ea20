"""Toxicity scoring on ONNX Runtime with int8 weights against torch fp32, side by side.

Run: `make bench`, or `.venv/bin/python bench/toxicity_runtime.py`. Needs no database.
Prints one JSON object on stdout; progress goes to stderr. Figures: bench/RESULTS.md.

The model is the bert-base-sized Detoxify checkpoint with random weights that the curation
benchmark uses (bench/build_detoxify.py, cached under `.run/bench/`), built locally. Random
weights cost what real ones cost, but they score every text near 0.5, where any change moves
decisions; a real Detoxify model puts most texts far from its threshold. So its toxicity head
is first fitted (logistic regression on the frozen encoder's pooled output, 128 texts, half
with insulting words planted) to mimic that: the encoder stays random. Decisions are compared
at the head's boundary (0.5) and, as stress cases, at the default policy threshold (0.1) and
at the median torch score, both of which lie inside one class's tail here.

Both scorers are the production classes (`DetoxifyScorer`, `OnnxDetoxifyScorer`), at the same
batch size (32), on the same 2,000 texts (about 40 words each), timed in alternating rounds so
that load from other processes falls on both alike. The ONNX export is done into a fresh cache
folder (its cost is reported) and then loaded again from that cache, as a worker would.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.build_detoxify import benchmark_texts, build_bert_base_detoxify
from bench.common import emit, log, machine
from curation import onnx_runtime
from curation.toxicity import (
    DETOXIFY_CLASSES,
    DetoxifyScorer,
    OnnxDetoxifyScorer,
    ToxicityConfig,
    detoxify_checkpoint_save,
    toxicity_decision,
)

MODEL_DIR = Path(__file__).resolve().parent.parent / ".run" / "bench" / "detoxify-bert-base"
TEXTS = 2000
TRAIN_TEXTS = 128
BATCH_SIZE = 32
ROUNDS = 10
# The fitted head's own boundary (balanced classes). Detoxify's real scores are calibrated for
# the default policy threshold, 0.1 (curation/models/policies.py), which here falls inside the
# benign texts' tail: reported too, beside the median torch score, as stress cases.
THRESHOLD = 0.5
DEFAULT_POLICY_THRESHOLD = 0.1
INSULTS = ("idiot", "stupid", "moron", "hate", "loser", "trash", "pathetic", "dumb")


def _planted(texts: list[str], *, seed: int) -> tuple[list[str], list[bool]]:
    """Half the texts get ten insulting words at random places; returns texts and labels.

    Ten in fifty words: a random encoder carries little of any signal, and a head fitted to a
    faint one needs large weights that magnify every rounding error; a trained model's
    features separate toxic from benign text by a wide margin, which a strong signal mimics."""
    rng = random.Random(seed)
    out, labels = [], []
    for text in texts:
        words = text.split()
        toxic = rng.random() < 0.5
        if toxic:
            for _ in range(10):
                words.insert(rng.randrange(len(words) + 1), rng.choice(INSULTS))
        out.append(" ".join(words))
        labels.append(toxic)
    return out, labels


def _pooled(scorer: DetoxifyScorer, texts: list[str]):
    import torch

    parts = []
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            inputs = onnx_runtime.encode(
                scorer.tokenizer,
                texts[start : start + BATCH_SIZE],
                max_length=scorer.max_length,
                tensors="pt",
            )
            parts.append(scorer.model.bert(**inputs).pooler_output)
    return torch.cat(parts).clone()


def _fitted_checkpoint(checkpoint: Path, config_dir: Path) -> tuple[Path, float]:
    """The random checkpoint with its toxicity head fitted to planted insults; returns the new
    checkpoint and the fit's accuracy on its own texts."""
    import torch

    texts, labels = _planted(benchmark_texts(count=TRAIN_TEXTS, seed=1), seed=2)
    config = ToxicityConfig(checkpoint=str(checkpoint), config_dir=str(config_dir))
    features = _pooled(DetoxifyScorer(config), texts)
    target = torch.tensor(labels, dtype=torch.float32)
    weight = torch.zeros(features.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        logits = features @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        (loss + 1e-3 * weight.square().sum()).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = ((features @ weight + bias > 0).float() == target).float().mean().item()
    state = torch.load(checkpoint, weights_only=False)["state_dict"]
    row = DETOXIFY_CLASSES.index("toxic")
    state["classifier.weight"][row] = weight.detach()
    state["classifier.bias"][row] = bias.detach()[0]
    fitted = checkpoint.with_name("bert-base-fitted-head-detoxify.ckpt")
    detoxify_checkpoint_save(fitted, state_dict=state, config_dir=config_dir)
    return fitted, accuracy


def _timed(scorers: dict, texts: list[str], *, rounds: int) -> tuple[dict, dict]:
    """Seconds and scores per runtime, in rounds that alternate which goes first."""
    seconds = dict.fromkeys(scorers, 0.0)
    scores: dict[str, list] = {name: [] for name in scorers}
    size = len(texts) // rounds
    for index in range(rounds):
        part = texts[index * size : (index + 1) * size]
        names = list(scorers) if index % 2 == 0 else list(reversed(scorers))
        for name in names:
            started = time.perf_counter()
            scores[name].extend(scorers[name].score_batch(part))
            seconds[name] += time.perf_counter() - started
        so_far = ", ".join(f"{name} {total:.1f} s" for name, total in seconds.items())
        log(f"round {index + 1}/{rounds}: {so_far}")
    return seconds, scores


def _agreement(torch_scores: list, onnx_scores: list, *, threshold: float) -> dict:
    same = sum(
        toxicity_decision(a, threshold=threshold)[0] == toxicity_decision(b, threshold=threshold)[0]
        for a, b in zip(torch_scores, onnx_scores, strict=True)
    )
    failed = sum(not toxicity_decision(a, threshold=threshold)[0] for a in torch_scores)
    return {
        "threshold": round(threshold, 6),
        "same_decision_share": round(same / len(torch_scores), 5),
        "different_decisions": len(torch_scores) - same,
        "torch_failed_share": round(failed / len(torch_scores), 4),
    }


def _differences(torch_scores: list, onnx_scores: list) -> dict:
    toxicity = [
        abs(a["toxicity"] - b["toxicity"]) for a, b in zip(torch_scores, onnx_scores, strict=True)
    ]
    every_label = max(
        abs(a[label] - b[label])
        for a, b in zip(torch_scores, onnx_scores, strict=True)
        for label in a
    )
    return {
        "max_abs_difference_toxicity": round(max(toxicity), 6),
        "mean_abs_difference_toxicity": round(statistics.fmean(toxicity), 6),
        "max_abs_difference_any_label": round(every_label, 6),
    }


def _scorers(checkpoint: Path, config_dir: Path, cache: Path) -> tuple[dict, dict]:
    base = ToxicityConfig(
        checkpoint=str(checkpoint), config_dir=str(config_dir), batch_size=BATCH_SIZE
    )
    onnx_config = dataclasses.replace(base, runtime="onnx", onnx_cache_dir=str(cache))
    started = time.perf_counter()
    torch_scorer = DetoxifyScorer(base)
    loaded = time.perf_counter()
    exported = OnnxDetoxifyScorer(onnx_config)
    export_done = time.perf_counter()
    onnx_scorer = OnnxDetoxifyScorer(onnx_config)
    cached = time.perf_counter()
    assert exported.exported and not onnx_scorer.exported
    model_file = onnx_scorer.entry / onnx_runtime.MODEL_FILE
    figures = {
        "torch_load_s": round(loaded - started, 2),
        "onnx_export_s": round(export_done - loaded, 2),
        "onnx_cached_load_s": round(cached - export_done, 2),
        "checkpoint_mb": round(checkpoint.stat().st_size / 1e6, 1),
        "onnx_int8_mb": round(model_file.stat().st_size / 1e6, 1),
    }
    return {"torch": torch_scorer, "onnx-int8": onnx_scorer}, figures


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=TEXTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    checkpoint = MODEL_DIR / "bert-base-random-detoxify.ckpt"
    config_dir = MODEL_DIR / "bert-base-random"
    if not (checkpoint.is_file() and (config_dir / "config.json").is_file()):
        log(f"building the bert-base Detoxify checkpoint in {MODEL_DIR}")
        checkpoint, config_dir = build_bert_base_detoxify(MODEL_DIR)
    log(f"fitting the toxicity head on {TRAIN_TEXTS} texts")
    fitted, fit_accuracy = _fitted_checkpoint(checkpoint, config_dir)
    # A whole number of rounds, so that both runtimes score every text.
    count = args.texts // args.rounds * args.rounds
    texts, planted = _planted(benchmark_texts(count=count, seed=3), seed=4)
    with tempfile.TemporaryDirectory(prefix="onnx-cache-") as cache:
        log("loading torch, exporting to ONNX int8, loading the export from its cache")
        scorers, load = _scorers(fitted, config_dir, Path(cache))
        for scorer in scorers.values():
            scorer.score_batch(texts[:BATCH_SIZE])  # warm-up: first calls allocate
        seconds, scores = _timed(scorers, texts, rounds=args.rounds)
    torch_scores, onnx_scores = scores["torch"], scores["onnx-int8"]
    rates = {name: len(texts) / s for name, s in seconds.items()}
    median = statistics.median(s["toxicity"] for s in torch_scores)
    held_out = statistics.fmean(
        (s["toxicity"] > 0.5) == toxic for s, toxic in zip(torch_scores, planted, strict=True)
    )
    emit(
        {
            "benchmark": "toxicity_runtime",
            "machine": machine(),
            "load_average_1m": {"start": load_before, "end": os.getloadavg()[0]},
            "model": "bert-base shape (hidden 768, 12 layers, vocab 30522), random encoder, "
            "toxicity head fitted to planted insults",
            "texts": len(texts),
            "batch_size": BATCH_SIZE,
            "threads": {"torch": torch.get_num_threads(), "cpus": os.cpu_count()},
            "texts_per_s": {name: round(rate, 1) for name, rate in rates.items()},
            "onnx_over_torch": round(rates["onnx-int8"] / rates["torch"], 2),
            **_differences(torch_scores, onnx_scores),
            "agreement_at_threshold": _agreement(torch_scores, onnx_scores, threshold=THRESHOLD),
            "agreement_default_policy_threshold": _agreement(
                torch_scores, onnx_scores, threshold=DEFAULT_POLICY_THRESHOLD
            ),
            "agreement_median_threshold": _agreement(torch_scores, onnx_scores, threshold=median),
            "head_fit_accuracy": round(fit_accuracy, 3),
            "head_held_out_accuracy_torch": round(held_out, 3),
            **load,
            "total_s": round(time.perf_counter() - started, 1),
        }
    )


if __name__ == "__main__":
    main()
