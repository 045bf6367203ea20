"""The external trainer: an operator's command run on an export directory, never through a
shell, with its exit status, output and timeout recorded."""

import shlex
import sys

import pytest

from training.errors import TrainingError
from training.runs.external import (
    ERR_COMMAND_NOT_FOUND,
    ERR_EMPTY_COMMAND,
    ERR_TIMED_OUT,
    run_external,
)

PYTHON = shlex.quote(sys.executable)


def test_run_external_substitutes_the_directories_and_records_success(tmp_path):
    export = tmp_path / "my export"  # a space: the path must stay one argument
    export.mkdir()
    script = (
        "import pathlib, sys; "
        "pathlib.Path(sys.argv[2], 'adapter.txt').write_text(sys.argv[1]); "
        "print('trained on', sys.argv[1])"
    )
    command = f"{PYTHON} -c {shlex.quote(script)} {{export_dir}} {{output_dir}}"

    result = run_external(
        command=command, export_dir=export, output_dir=tmp_path / "out", timeout_s=30
    )

    assert result.ok
    assert result.exit_code == 0
    assert (tmp_path / "out" / "adapter.txt").read_text() == str(export)
    assert result.output.strip() == f"trained on {export}"
    assert result.argv[-2:] == [str(export), str(tmp_path / "out")]


def test_run_external_records_a_failing_exit_and_its_output(tmp_path):
    script = "import sys; print('boom', file=sys.stderr); sys.exit(3)"

    result = run_external(
        command=f"{PYTHON} -c {shlex.quote(script)}",
        export_dir=tmp_path,
        output_dir=tmp_path / "out",
        timeout_s=30,
    )

    assert not result.ok
    assert result.exit_code == 3
    assert result.timed_out is False
    assert "boom" in result.output


def test_run_external_stops_a_command_that_runs_too_long(tmp_path):
    script = "import time; print('started', flush=True); time.sleep(60)"

    result = run_external(
        command=f"{PYTHON} -c {shlex.quote(script)}",
        export_dir=tmp_path,
        output_dir=tmp_path / "out",
        timeout_s=1,
    )

    assert result.timed_out is True
    assert result.exit_code is None
    assert result.error == ERR_TIMED_OUT.format(timeout_s=1)
    assert "started" in result.output


def test_run_external_never_uses_a_shell(tmp_path):
    marker = tmp_path / "injected"

    result = run_external(
        command=f"{PYTHON} -c 'print(1)' ; touch {marker}",
        export_dir=tmp_path,
        output_dir=tmp_path / "out",
        timeout_s=30,
    )

    assert not marker.exists()
    assert result.exit_code == 0


def test_run_external_records_a_command_that_cannot_start(tmp_path):
    result = run_external(
        command="/nonexistent/trainer {export_dir}",
        export_dir=tmp_path,
        output_dir=tmp_path / "out",
        timeout_s=30,
    )

    assert not result.ok
    assert result.exit_code is None
    assert result.error.startswith(ERR_COMMAND_NOT_FOUND.split("{")[0])


def test_run_external_refuses_an_empty_command(tmp_path):
    with pytest.raises(TrainingError) as error:
        run_external(command="  ", export_dir=tmp_path, output_dir=tmp_path, timeout_s=1)
    assert str(error.value) == ERR_EMPTY_COMMAND
