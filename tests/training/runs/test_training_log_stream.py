"""A training run's log is written while it trains: every line stamped when the trainer wrote
it, reaching the run row before training ends (so the run page's polling shows it), and the
eval split's loss recorded at the trainer's eval steps for the chart."""

import re
from datetime import datetime

import pytest

from tests.support import factories
from tests.support.training import frozen_version, preference_rows, write_jsonl
from training.models import TrainingRun
from training.runs import execute as perform
from training.runs import services as runs
from training.runs.trainer import EVAL_POINTS, NOTE_NO_EVAL_LOSS, TrainConfig, train

STEPS = 10
STAMP = re.compile(r"^(\d\d:\d\d:\d\d\.\d\d\d) (.*)$")


def export(directory, *, with_eval: bool = True):
    rows = preference_rows(conversational=False)
    write_jsonl(directory / "train.jsonl", rows[:40])
    write_jsonl(directory / "eval.jsonl", rows[40:56] if with_eval else [])
    return directory


def config(base_model, out, steps=STEPS) -> TrainConfig:
    return TrainConfig(
        method="dpo", base_model_dir=base_model, output_dir=out, steps=steps, batch_size=4
    )


def stamps(log: str) -> list[str]:
    return [STAMP.match(line).group(1) for line in log.splitlines()]


@pytest.mark.slow
def test_each_log_line_is_reported_when_written_with_eval_loss_at_the_eval_steps(tmp_path, task_lm):
    seen: list[dict] = []
    result = train(
        export_dir=export(tmp_path / "export"),
        config=config(task_lm, tmp_path / "out"),
        log=seen.append,
    )

    assert [event["line"] for event in seen] == result.log_lines
    times = [event["at"] for event in seen]
    assert times == sorted(times)
    assert all(isinstance(at, datetime) and at.tzinfo is not None for at in times)
    # Lines come from steps seconds apart, not one batch at the end.
    assert times[-1] > times[0]
    step_lines = [e for e in seen if e["line"].startswith("step ") and "loss=" in e["line"]]
    assert len({e["at"] for e in step_lines}) == len(step_lines)
    # The eval split was scored EVAL_POINTS times, at steps 2, 4, ... 10.
    every = STEPS // EVAL_POINTS
    assert [step for step, _ in result.eval_losses] == list(range(every, STEPS + 1, every))
    assert all(loss > 0 for _, loss in result.eval_losses)
    assert [e["eval_loss"] for e in seen if e["eval_loss"] is not None] == [
        loss for _, loss in result.eval_losses
    ]


@pytest.mark.slow
def test_without_an_eval_split_the_log_says_there_is_no_eval_loss(tmp_path, task_lm):
    result = train(
        export_dir=export(tmp_path / "export", with_eval=False),
        config=config(task_lm, tmp_path / "out", steps=2),
    )
    assert result.eval_losses == []
    assert result.log_lines[0] == NOTE_NO_EVAL_LOSS.format(why="eval.jsonl is empty or missing")


@pytest.mark.slow
@pytest.mark.django_db
def test_the_run_row_gets_the_log_while_training_runs(tmp_path, task_lm, admin, export_dir):
    version = frozen_version(admin)
    run = factories.training_run(version, export_format="dpo_standard")
    runs.log_append(run.pk, "training dpo + LoRA")
    progress = perform._Progress(run_id=run.pk)
    # What the run page would read from the row after each line the trainer writes.
    snapshots: list[tuple[int, str]] = []

    def log(event):
        progress.log(event)
        snapshots.append((event["step"], TrainingRun.objects.get(pk=run.pk).log))

    train(
        export_dir=export(tmp_path / "export"),
        config=config(task_lm, tmp_path / "out"),
        progress=progress,
        log=log,
    )
    progress.flush()
    run.refresh_from_db()

    # Before the last step, the row already held the first step's line.
    assert any(step < STEPS and "step 1/10 " in text for step, text in snapshots)
    lines = run.log.splitlines()
    assert lines[0].endswith(" training dpo + LoRA")
    assert sum(" loss=" in line for line in lines) == STEPS
    times = stamps(run.log)
    assert times == sorted(times)
    assert len(set(times)) > STEPS // 2  # stamped per line, not once for the lot
    assert (run.progress_step, run.progress_total) == (STEPS, STEPS)
    assert [step for step, _ in run.eval_loss_curve] == [2, 4, 6, 8, 10]
