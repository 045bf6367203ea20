"""The built-in trainer end to end on a tiny offline model, plus the gate and external runner.

One DPO run per export format and one SFT run, each shared by a module-scoped fixture: the
runs take a couple of seconds each, the imports most of the rest.
"""

import json
import math
from pathlib import Path

import pytest

from flywheel_site.demo.tinylm import build_tiny_lm
from tests.support.training import (
    POLITE,
    TOPICS,
    preference_rows,
    write_jsonl,
)
from training.errors import TrainingError
from training.runs.trainer import (
    ERR_DPO_COLUMNS,
    ERR_EMPTY_DATASET,
    ERR_FORMAT_MISMATCH,
    ERR_MISSING_FILE,
    ERR_NO_PAIRS,
    ERR_NOTHING_FITS,
    ERR_UNKNOWN_METHOD,
    NOTE_DROPPED,
    NOTE_TRUNCATED,
    SKIP_ANSWER_FILLS,
    SKIP_EMPTY_ANSWER,
    TrainConfig,
    evaluate_preferences,
    pair_fit,
    train,
)

N_TRAIN = 60


def sft_rows() -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"Tell me about {topic}."},
                {"role": "assistant", "content": POLITE[i % len(POLITE)].format(t=topic)},
            ]
        }
        for i, topic in enumerate(TOPICS)
    ]


def write_export(directory: Path, rows: list[dict], *, n_train: int = N_TRAIN) -> Path:
    write_jsonl(directory / "train.jsonl", rows[:n_train])
    write_jsonl(directory / "eval.jsonl", rows[n_train:])
    (directory / "manifest.json").write_text(json.dumps({"n": len(rows)}), encoding="utf-8")
    return directory


@pytest.fixture(scope="module", params=["standard", "conversational"])
def dpo_run(request, task_lm, tmp_path_factory):
    conversational = request.param == "conversational"
    root = tmp_path_factory.mktemp(f"dpo-{request.param}")
    export = write_export(root / "export", preference_rows(conversational=conversational))
    events: list[dict] = []
    result = train(
        export_dir=export,
        config=TrainConfig(
            method="dpo", base_model_dir=task_lm, output_dir=root / "adapter", steps=30
        ),
        progress=events.append,
    )
    eval_file = export / "eval.jsonl"
    base_metrics = evaluate_preferences(
        model_dir_or_base=task_lm, adapter_dir=None, eval_file=eval_file
    )
    trained_metrics = evaluate_preferences(
        model_dir_or_base=task_lm, adapter_dir=result.adapter_dir, eval_file=eval_file
    )
    print(
        f"\n[{request.param}] loss {result.first_loss:.4f} -> {result.final_loss:.4f} "
        f"in {result.train_seconds:.2f} s; base {base_metrics}; trained {trained_metrics}"
    )
    return {
        "conversational": conversational,
        "export": export,
        "events": events,
        "result": result,
        "base": base_metrics,
        "trained": trained_metrics,
    }


@pytest.fixture(scope="module")
def sft_run(task_lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    export = write_export(root / "export", sft_rows())
    events: list[dict] = []
    result = train(
        export_dir=export,
        config=TrainConfig(
            method="sft", base_model_dir=task_lm, output_dir=root / "adapter", steps=20
        ),
        progress=events.append,
    )
    print(f"\n[sft] loss {result.first_loss:.4f} -> {result.final_loss:.4f}")
    return {"events": events, "result": result}


# --------------------------------------------------------------------------- tiny LM


@pytest.mark.slow
def test_tiny_lm_is_deterministic(tmp_path):
    first = build_tiny_lm(tmp_path / "a", corpus=["Hello there.", "General Kenobi."], seed=3)
    second = build_tiny_lm(tmp_path / "b", corpus=["Hello there.", "General Kenobi."], seed=3)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


@pytest.mark.slow
def test_tiny_lm_chat_template_renders_the_prompt_as_a_prefix(task_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(task_lm)
    model = AutoModelForCausalLM.from_pretrained(task_lm)
    prompt = [{"role": "user", "content": "Tell me about red apples."}]
    reply = [{"role": "assistant", "content": "Happy to help with red apples."}]
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)["input_ids"]
    full_ids = tokenizer.apply_chat_template(prompt + reply)["input_ids"]

    assert full_ids[: len(prompt_ids)] == prompt_ids
    assert len(full_ids) > len(prompt_ids)
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<|pad|>", "<|end|>")
    assert model.config.vocab_size == len(tokenizer) <= 512
    assert model.config.tie_word_embeddings


# --------------------------------------------------------------------------- DPO


@pytest.mark.slow
def test_dpo_loss_starts_at_log_2_and_falls(dpo_run):
    result = dpo_run["result"]

    # Policy equals reference before the first update, so the DPO loss is exactly -log sigmoid(0).
    assert result.first_loss == pytest.approx(math.log(2), abs=1e-3)
    assert result.final_loss < result.first_loss
    assert result.steps == 30
    assert len(result.losses) == 30


@pytest.mark.slow
def test_dpo_trained_adapter_beats_the_base_on_held_out_pairs(dpo_run):
    base, trained = dpo_run["base"], dpo_run["trained"]

    assert trained["n"] == base["n"] == len(TOPICS) - N_TRAIN
    assert trained["normalised_accuracy"] > base["normalised_accuracy"]
    assert trained["implicit_reward_accuracy"] > base["implicit_reward_accuracy"]
    assert trained["reward_margin"] > 0
    assert trained["mean_logp_chosen"] > trained["mean_logp_rejected"]
    assert trained["normalised_accuracy"] >= base["normalised_accuracy"] + 0.1


@pytest.mark.slow
def test_dpo_base_scored_against_itself_has_no_implicit_reward(dpo_run):
    base = dpo_run["base"]

    assert base["implicit_reward_accuracy"] == 0.0
    assert base["reward_margin"] == 0.0
    assert base["reference_normalised_accuracy"] == base["normalised_accuracy"]


@pytest.mark.slow
def test_dpo_eval_against_a_reference_adapter_measures_the_change_from_it(dpo_run, task_lm):
    adapter = dpo_run["result"].adapter_dir
    metrics = evaluate_preferences(
        model_dir_or_base=task_lm,
        adapter_dir=adapter,
        eval_file=dpo_run["export"] / "eval.jsonl",
        reference_adapter_dir=adapter,
    )

    assert metrics["implicit_reward_accuracy"] == 0.0
    assert metrics["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["reference_normalised_accuracy"] == dpo_run["trained"]["normalised_accuracy"]


@pytest.mark.slow
def test_dpo_progress_is_reported_for_every_step(dpo_run):
    events, result = dpo_run["events"], dpo_run["result"]

    assert [event["step"] for event in events] == list(range(1, 31))
    assert {event["max_steps"] for event in events} == {30}
    assert [event["loss"] for event in events] == result.losses
    assert result.log_text.splitlines() == result.log_lines
    assert result.log_lines[0].startswith("step 1/30 ")


@pytest.mark.slow
def test_dpo_adapter_is_saved_with_an_absolute_base_path(dpo_run, task_lm):
    result = dpo_run["result"]
    adapter_config = json.loads((result.adapter_dir / "adapter_config.json").read_text())

    assert result.conversational is dpo_run["conversational"]
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert adapter_config["base_model_name_or_path"] == str(task_lm)
    assert Path(adapter_config["base_model_name_or_path"]).is_absolute()
    assert json.loads(json.dumps(result.as_dict()))["adapter_dir"] == str(result.adapter_dir)


# --------------------------------------------------------------------------- SFT


@pytest.mark.slow
def test_sft_loss_falls_on_messages_data(sft_run):
    result = sft_run["result"]

    assert result.method == "sft"
    assert result.conversational is True
    assert result.final_loss < result.first_loss
    assert [event["step"] for event in sft_run["events"]] == list(range(1, 21))
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()


# --------------------------------------------------------------------------- data and errors


@pytest.mark.slow  # loads Hugging Face datasets (seconds of imports)
@pytest.mark.parametrize(
    ("rows", "columns", "conversational"),
    [
        (preference_rows(conversational=False), {"prompt", "chosen", "rejected"}, False),
        (preference_rows(conversational=True), {"prompt", "chosen", "rejected"}, True),
        (sft_rows(), {"messages"}, True),
    ],
    ids=["dpo-standard", "dpo-conversational", "sft-messages"],
)
def test_load_dataset_reads_every_export_format(tmp_path, rows, columns, conversational):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    path = write_jsonl(tmp_path / "train.jsonl", rows)
    dataset = load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )

    assert len(dataset) == len(rows)
    assert set(dataset.column_names) == columns
    assert is_conversational(dataset[0]) is conversational


def test_train_refuses_an_unknown_method(tmp_path):
    config = TrainConfig(method="ppo", base_model_dir=tmp_path, output_dir=tmp_path / "out")

    with pytest.raises(TrainingError, match="Unknown training method 'ppo'") as error:
        train(export_dir=tmp_path, config=config)
    assert str(error.value) == ERR_UNKNOWN_METHOD.format(method="ppo")


@pytest.mark.slow
def test_train_refuses_an_export_without_train_jsonl(tmp_path, task_lm):
    config = TrainConfig(method="dpo", base_model_dir=task_lm, output_dir=tmp_path / "out")

    with pytest.raises(FileNotFoundError) as error:
        train(export_dir=tmp_path, config=config)
    assert str(error.value) == ERR_MISSING_FILE.format(export_dir=tmp_path, name="train.jsonl")


@pytest.mark.slow
def test_train_refuses_an_empty_export(tmp_path, task_lm):
    export = write_export(tmp_path / "export", [])
    config = TrainConfig(method="sft", base_model_dir=task_lm, output_dir=tmp_path / "out")

    with pytest.raises(TrainingError) as error:
        train(export_dir=export, config=config)
    assert str(error.value) == ERR_EMPTY_DATASET.format(path=export / "train.jsonl")


@pytest.mark.slow
def test_train_refuses_at_once_when_every_answer_fills_max_length(tmp_path, task_lm):
    """With no pair left TRL used to die inside with `num_samples=0`. The refusal names the
    setting to raise."""
    rows = [
        dict(row, chosen=row["chosen"] * 8, rejected=row["rejected"] * 8)
        for row in preference_rows(conversational=False)
    ]
    export = write_export(tmp_path / "export", rows)
    config = TrainConfig(
        method="dpo", base_model_dir=task_lm, output_dir=tmp_path / "out", max_length=16
    )

    with pytest.raises(TrainingError) as error:
        train(export_dir=export, config=config)
    assert error.value.message == ERR_NOTHING_FITS.format(
        path=export / "train.jsonl", total=N_TRAIN, max_length=16
    )
    assert "FLYWHEEL_TRAINING_MAX_LENGTH" in error.value.message
    assert not any((tmp_path / "out").iterdir())  # refused before any training


@pytest.mark.slow
def test_train_keeps_long_prompts_truncated_and_says_how_many(tmp_path, task_lm):
    """TRL's default drops a pair whose prompt fills max_length; ours cuts the prompt from
    the left and trains on every pair."""
    rows = preference_rows(conversational=False)
    rows[:5] = [dict(row, prompt=row["prompt"] * 8) for row in rows[:5]]
    export = write_export(tmp_path / "export", rows)
    config = TrainConfig(
        method="dpo",
        base_model_dir=task_lm,
        output_dir=tmp_path / "out",
        steps=2,
        batch_size=4,
        max_length=24,
    )

    result = train(export_dir=export, config=config)

    assert result.n_train == N_TRAIN
    assert result.log_lines[0] == NOTE_TRUNCATED.format(truncated=5, total=N_TRAIN, max_length=24)
    assert result.steps == 2


@pytest.mark.slow
def test_train_drops_only_pairs_with_nothing_left_and_says_how_many(tmp_path, task_lm):
    rows = preference_rows(conversational=False)
    rows[:3] = [dict(row, chosen=row["chosen"] * 20) for row in rows[:3]]
    export = write_export(tmp_path / "export", rows)
    config = TrainConfig(
        method="dpo", base_model_dir=task_lm, output_dir=tmp_path / "out", steps=1, max_length=48
    )

    result = train(export_dir=export, config=config)

    assert result.n_train == N_TRAIN - 3
    assert result.log_lines[0] == NOTE_DROPPED.format(
        kept=N_TRAIN - 3, total=N_TRAIN, max_length=48
    )
    assert "FLYWHEEL_TRAINING_MAX_LENGTH" in result.log_lines[0]


@pytest.mark.slow
def test_train_refuses_sft_data_for_dpo(tmp_path, task_lm):
    export = write_export(tmp_path / "export", sft_rows())
    config = TrainConfig(method="dpo", base_model_dir=task_lm, output_dir=tmp_path / "out")

    with pytest.raises(TrainingError) as error:
        train(export_dir=export, config=config)
    assert str(error.value) == ERR_DPO_COLUMNS.format(
        path=export / "train.jsonl", columns=["messages"]
    )


@pytest.mark.slow
def test_train_refuses_data_in_another_format_than_configured(tmp_path, task_lm):
    export = write_export(tmp_path / "export", preference_rows(conversational=False))
    config = TrainConfig(
        method="dpo",
        base_model_dir=task_lm,
        output_dir=tmp_path / "out",
        conversational=True,
    )

    with pytest.raises(TrainingError) as error:
        train(export_dir=export, config=config)
    assert str(error.value) == ERR_FORMAT_MISMATCH.format(
        expected=True, path=export / "train.jsonl", actual="standard (plain strings)"
    )


@pytest.mark.slow
def test_eval_truncates_a_long_prompt_and_scores_the_pair_counted_as_truncated(tmp_path, task_lm):
    rows = preference_rows(conversational=False)[:3]
    rows[0]["prompt"] = "Tell me about everything. " * 40 + "\n"
    eval_file = write_jsonl(tmp_path / "eval.jsonl", rows)

    metrics = evaluate_preferences(
        model_dir_or_base=task_lm, adapter_dir=None, eval_file=eval_file, max_length=64
    )

    assert (metrics["n"], metrics["truncated"], metrics["skipped"]) == (3, 1, 0)
    assert metrics["per_pair"]["index"] == [0, 1, 2]
    assert metrics["skipped_reasons"] == {}


@pytest.mark.slow
def test_eval_counts_every_pair_it_cannot_score_with_its_reason(tmp_path, task_lm):
    rows = preference_rows(conversational=False)[:4]
    rows[1]["chosen"] = "Tell me about everything. " * 40
    eval_file = write_jsonl(tmp_path / "eval.jsonl", rows)

    metrics = evaluate_preferences(
        model_dir_or_base=task_lm, adapter_dir=None, eval_file=eval_file, max_length=64
    )

    assert (metrics["n"], metrics["skipped"]) == (3, 1)
    assert metrics["skipped_reasons"] == {SKIP_ANSWER_FILLS: 1}
    assert metrics["per_pair"]["index"] == [0, 2, 3]
    assert metrics["n"] + metrics["skipped"] == len(rows)


@pytest.mark.parametrize(
    ("lengths", "fit"),
    [
        ((10, 5, 6), "fits"),
        ((10, 6, 6), "fits"),  # exactly max_length=16
        ((11, 6, 2), "truncated"),
        ((200, 3, 3), "truncated"),  # a prompt alone far longer: cut, never dropped
        ((2, 16, 3), SKIP_ANSWER_FILLS),
        ((2, 0, 3), SKIP_EMPTY_ANSWER),
    ],
)
def test_pair_fit_truncates_prompts_and_skips_only_pairs_with_no_signal(lengths, fit):
    prompt, chosen, rejected = lengths
    assert pair_fit(prompt=prompt, chosen=chosen, rejected=rejected, max_length=16) == fit


@pytest.mark.slow
def test_eval_refuses_a_file_with_no_usable_pairs(tmp_path, task_lm):
    eval_file = write_jsonl(tmp_path / "eval.jsonl", [])

    with pytest.raises(TrainingError) as error:
        evaluate_preferences(model_dir_or_base=task_lm, adapter_dir=None, eval_file=eval_file)
    assert str(error.value) == ERR_NO_PAIRS.format(path=eval_file, max_length=128)


class Cancelled(Exception):
    pass


@pytest.mark.slow
def test_an_exception_from_progress_stops_training(tmp_path, task_lm):
    export = write_export(tmp_path / "export", sft_rows())
    steps_seen: list[int] = []

    def progress(event: dict) -> None:
        steps_seen.append(event["step"])
        if event["step"] == 2:
            raise Cancelled

    config = TrainConfig(
        method="sft", base_model_dir=task_lm, output_dir=tmp_path / "out", steps=20
    )
    with pytest.raises(Cancelled):
        train(export_dir=export, config=config, progress=progress)
    assert steps_seen == [1, 2]
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()
