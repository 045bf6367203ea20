"""The ONNX Runtime (int8) path for the toxicity model, on the tiny Detoxify checkpoint: it agrees
with torch, its export is cached by the checkpoint's hash, the runtime setting is validated at
start, and every decision names the runtime that scored it."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curation import onnx_runtime, pipeline, policies
from curation.models import FilterDecision
from curation.toxicity import (
    NO_ONNX_CACHE,
    UNKNOWN_RUNTIME,
    OnnxDetoxifyScorer,
    ToxicityConfig,
    detoxify_checkpoint_save,
    get_scorer,
    reset_scorer_cache,
    toxicity_decision,
)
from tests.support.curation import edited
from tests.support.tiny_detoxify import BENIGN_SENTENCES, TOXIC_SENTENCES

# int8 weights move the tiny model's probabilities by up to about 0.006 (measured): well inside.
MAX_ABS_DIFFERENCE = 0.03
THRESHOLD = 0.5
TEXTS = [
    *TOXIC_SENTENCES,
    *BENIGN_SENTENCES,
    "you are a stupid idiot and i hope you have a good day",
    "thank you",
    "",
    "you " * 200,  # truncated to the model's positions
    "naïve café — 日本語 🙂",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_scorer_cache()
    yield
    reset_scorer_cache()


def _onnx(config: ToxicityConfig, cache: Path, **changes) -> ToxicityConfig:
    return dataclasses.replace(config, runtime="onnx", onnx_cache_dir=str(cache), **changes)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_the_onnx_path_agrees_with_torch_on_the_tiny_model(
    tiny_detoxify, tmp_path_factory, batch_size
):
    cache = tmp_path_factory.getbasetemp() / "onnx-agreement"
    torch_scores = get_scorer(dataclasses.replace(tiny_detoxify, batch_size=batch_size))
    onnx_scores = get_scorer(_onnx(tiny_detoxify, cache, batch_size=batch_size))

    expected, actual = torch_scores.score_batch(TEXTS), onnx_scores.score_batch(TEXTS)

    assert onnx_scores.runtime == "onnx-int8" and torch_scores.runtime == "torch"
    assert (onnx_scores.name, onnx_scores.version) == (torch_scores.name, torch_scores.version)
    assert onnx_scores.labels == torch_scores.labels
    difference = max(
        abs(a[label] - b[label]) for a, b in zip(expected, actual, strict=True) for label in a
    )
    assert difference < MAX_ABS_DIFFERENCE, f"max abs difference {difference:.5f}"
    decisions = [toxicity_decision(s, threshold=THRESHOLD)[0] for s in (*expected, *actual)]
    assert decisions[: len(TEXTS)] == decisions[len(TEXTS) :]
    # The test texts sit on both sides, so the agreement above is not all-pass or all-fail.
    assert 0 < sum(decisions[: len(TEXTS)]) < len(TEXTS)


@pytest.mark.slow
def test_the_export_is_reused_and_redone_when_the_checkpoint_changes(tiny_detoxify, tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    shutil.copyfile(tiny_detoxify.checkpoint, checkpoint)
    config = _onnx(tiny_detoxify, tmp_path / "cache", checkpoint=str(checkpoint))

    first = OnnxDetoxifyScorer(config)
    again = OnnxDetoxifyScorer(config)
    before = first.score_batch([TOXIC_SENTENCES[0]])[0]["toxicity"]

    assert first.exported and not again.exported
    assert again.entry == first.entry
    assert again.score_batch([TOXIC_SENTENCES[0]])[0]["toxicity"] == before

    # A new checkpoint at the same path: toxic text now reads as benign.
    import torch  # here, not at the top: collecting the suite need not import torch

    state = torch.load(checkpoint, weights_only=False)
    state["state_dict"]["classifier.bias"] -= 20.0
    detoxify_checkpoint_save(
        checkpoint, state_dict=state["state_dict"], config_dir=Path(config.config_dir)
    )
    changed = OnnxDetoxifyScorer(config)

    assert changed.exported
    assert changed.entry != first.entry
    assert changed.score_batch([TOXIC_SENTENCES[0]])[0]["toxicity"] < 0.01 < before
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [first.entry.name, changed.entry.name]
    )


@pytest.mark.slow
def test_an_export_loads_without_the_checkpoint(tiny_detoxify, tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    shutil.copyfile(tiny_detoxify.checkpoint, checkpoint)
    config = _onnx(tiny_detoxify, tmp_path / "cache", checkpoint=str(checkpoint))
    entry = OnnxDetoxifyScorer(config).entry

    loaded = onnx_runtime.OnnxModel(entry)

    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "model.int8.onnx", "tokenizer"]
    assert loaded.probabilities([TOXIC_SENTENCES[0]])[0][0] > 0.9


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"runtime": "tensorflow"}, UNKNOWN_RUNTIME),
        ({"runtime": ""}, UNKNOWN_RUNTIME),
        ({"runtime": "onnx"}, NO_ONNX_CACHE),
    ],
)
def test_a_bad_runtime_config_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        ToxicityConfig(**fields)


def test_an_unknown_runtime_setting_stops_the_process_at_start():
    environment = {**os.environ, "FLYWHEEL_TOXICITY_RUNTIME": "tensorflow"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "FLYWHEEL_TOXICITY_RUNTIME must be one of torch, onnx" in result.stderr


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize(("runtime", "recorded"), [("torch", "torch"), ("onnx", "onnx-int8")])
def test_every_toxicity_decision_records_its_runtime(
    settings, toxicity_model, tmp_path_factory, as_user, curator, runtime, recorded
):
    settings.FLYWHEEL_TOXICITY_RUNTIME = runtime
    settings.FLYWHEEL_TOXICITY_ONNX_CACHE_DIR = tmp_path_factory.getbasetemp() / "onnx-agreement"
    policies.policy_create(
        changes={"min_words": 2, "quality_min": 0.0, "band_low": 0.0, "band_high": 1.0}
    )
    toxic = edited("r1", response="here is the answer to your question", final=TOXIC_SENTENCES[0])
    clean = edited("r2", response="here is the answer", final=BENIGN_SENTENCES[2])

    pipeline.interactions_curate(interaction_ids=[toxic.pk, clean.pk])

    rows = FilterDecision.objects.filter(filter="toxicity").order_by("candidate_id")
    assert [(row.passed, row.runtime) for row in rows] == [(False, recorded), (True, recorded)]
    rules = FilterDecision.objects.exclude(filter="toxicity")
    assert set(rules.values_list("runtime", flat=True)) == {""}
    page = as_user(curator).get(f"/curation/candidates/{rows[0].candidate_id}/")
    assert f"({recorded})" in page.content.decode()
