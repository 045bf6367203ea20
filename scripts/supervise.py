#!/usr/bin/env python3
"""Run the processes of a Procfile and keep them running.

    scripts/supervise.py [--pidfile FILE] PROCFILE

A child that exits, for any reason, is logged and started again after a
backoff that doubles from 1 s up to FLYWHEEL_RESTART_BACKOFF_MAX_S (default
30 s) and falls back to 1 s once the child has stayed up for a minute. One
child failing never stops the others. SIGINT (Ctrl-C) or SIGTERM stops every
child: SIGTERM to its process group, SIGKILL after 10 s.

Each child runs in a process group of its own, and when it dies the rest of
its group is killed too, so nothing it forked (gunicorn workers, a forked
helper) outlives it and holds a port or a lock against its successor.

Procfile lines are `name: command`; the command runs under `sh -c "exec ..."`
with this process's environment, so `$PORT` and the like expand there.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

BACKOFF_START_S = 1.0
STABLE_AFTER_S = 60.0
STOP_TIMEOUT_S = 10.0


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} supervise: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    command: str
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = BACKOFF_START_S
    restarts: int = field(default=0)

    def start(self) -> None:
        # The command is the project's own Procfile line, run by the shell as written there.
        self.proc = subprocess.Popen(  # noqa: S603
            ["/bin/sh", "-c", f"exec {self.command}"], start_new_session=True
        )
        self.started_at = time.monotonic()
        log(f"{self.name} started (pid {self.proc.pid})")

    def reap_group(self) -> None:
        # The group id is the dead leader's pid; whatever it forked is still in it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def read_procfile(path: str) -> list[Child]:
    children = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, command = line.partition(":")
            children.append(Child(name.strip(), command.strip()))
    if not children:
        raise SystemExit(f"supervise: no processes in {path}")
    return children


def supervise(children: list[Child], backoff_max: float) -> int:
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for child in children:
        child.start()
    while not stopping:
        now = time.monotonic()
        for child in children:
            if child.proc is None:
                if now >= child.restart_at:
                    child.start()
                continue
            code = child.proc.poll()
            if code is None:
                if now - child.started_at >= STABLE_AFTER_S:
                    child.backoff = BACKOFF_START_S
                continue
            child.reap_group()
            child.proc = None
            child.restarts += 1
            child.restart_at = now + child.backoff
            log(
                f"{child.name} exited with {code} after {now - child.started_at:.1f}s; "
                f"restart {child.restarts} in {child.backoff:.0f}s"
            )
            child.backoff = min(child.backoff * 2, backoff_max)
        time.sleep(0.2)
    return stop(children)


def stop(children: list[Child]) -> int:
    running = [c for c in children if c.proc is not None and c.proc.poll() is None]
    log("stopping " + ", ".join(c.name for c in running))
    for child in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in running:
        try:
            child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f}s; killing it")
        child.reap_group()
        child.proc.wait()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("procfile")
    parser.add_argument("--pidfile", help="write this process's pid here (for `make stop`)")
    args = parser.parse_args()
    backoff_max = float(os.environ.get("FLYWHEEL_RESTART_BACKOFF_MAX_S", "30"))
    if backoff_max < BACKOFF_START_S:
        raise SystemExit("supervise: FLYWHEEL_RESTART_BACKOFF_MAX_S must be at least 1")
    children = read_procfile(args.procfile)
    if args.pidfile:
        with open(args.pidfile, "w") as handle:
            handle.write(f"{os.getpid()}\n")
    try:
        return supervise(children, backoff_max)
    finally:
        if args.pidfile:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(args.pidfile)


if __name__ == "__main__":
    sys.exit(main())
