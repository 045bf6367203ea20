"""The external trainer: an operator-configured command run on an export, never through a
shell, its output kept from the end. Pure Python, no Django, like training.runs.trainer."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from training.errors import TrainingError

EXTERNAL_OUTPUT_CAP = 64_000
ERR_EMPTY_COMMAND = "The external trainer command is empty."
ERR_COMMAND_NOT_FOUND = "The external trainer command could not be started: {error}"
ERR_TIMED_OUT = "The external trainer ran longer than {timeout_s} s and was stopped."


@dataclass
class ExternalResult:
    argv: list[str]
    exit_code: int | None
    timed_out: bool
    output: str
    output_truncated: bool
    duration_s: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.error


def _substitute(argv: list[str], *, export_dir: Path, output_dir: Path) -> list[str]:
    # Substituted after splitting, so a path with spaces stays one argument; str.replace
    # rather than str.format, so other braces in the command (JSON, say) are left alone.
    return [
        arg.replace("{export_dir}", str(export_dir)).replace("{output_dir}", str(output_dir))
        for arg in argv
    ]


def _tail(path: Path, cap: int) -> tuple[str, bool]:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size > cap:
            handle.seek(size - cap)
        data = handle.read()
    # The end of a failing trainer's output holds the traceback, so keep the tail.
    return data.decode("utf-8", errors="replace"), size > cap


def _wait(process: subprocess.Popen, *, timeout_s: int) -> int | None:
    """The exit status, or None when it ran too long: then its whole process group is
    killed, so a trainer's children do not linger."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None


def run_external(
    *, command: str, export_dir: Path, output_dir: Path, timeout_s: int
) -> ExternalResult:
    """Run an operator-configured trainer command on an export; never through a shell.

    `command` is a template with `{export_dir}` and `{output_dir}` placeholders, split with
    shlex. The paths are also passed as FLYWHEEL_EXPORT_DIR and FLYWHEEL_OUTPUT_DIR. Output
    (stdout and stderr together) is kept up to EXTERNAL_OUTPUT_CAP bytes, from the end.
    On timeout the whole process group is killed, so a trainer's children do not linger.
    """
    argv = shlex.split(command)
    if not argv:
        raise TrainingError(ERR_EMPTY_COMMAND)
    export_dir, output_dir = Path(export_dir).absolute(), Path(output_dir).absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    argv = _substitute(argv, export_dir=export_dir, output_dir=output_dir)
    env = {
        **os.environ,
        "FLYWHEEL_EXPORT_DIR": str(export_dir),
        "FLYWHEEL_OUTPUT_DIR": str(output_dir),
    }
    started = time.monotonic()
    # A file rather than a pipe: a chatty trainer cannot fill a pipe buffer and stall, and the
    # output never has to sit whole in this process's memory.
    with tempfile.TemporaryDirectory(prefix="flywheel-external-") as scratch:
        log_path = Path(scratch) / "output.log"
        with open(log_path, "wb") as log:
            try:
                process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            except OSError as error:
                return ExternalResult(
                    argv=argv,
                    exit_code=None,
                    timed_out=False,
                    output="",
                    output_truncated=False,
                    duration_s=time.monotonic() - started,
                    error=ERR_COMMAND_NOT_FOUND.format(error=error),
                )
            exit_code = _wait(process, timeout_s=timeout_s)
        duration = time.monotonic() - started
        output, truncated = _tail(log_path, EXTERNAL_OUTPUT_CAP)
    timed_out = exit_code is None
    return ExternalResult(
        argv=argv,
        exit_code=exit_code,
        timed_out=timed_out,
        output=output,
        output_truncated=truncated,
        duration_s=duration,
        error=ERR_TIMED_OUT.format(timeout_s=timeout_s) if timed_out else "",
    )
