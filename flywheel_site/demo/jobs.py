"""The RQ entry point `make run` leaves the demo's training cycles to (`load_demo
--background`): thin, idempotent (a cycle with a run is not trained again)."""

import logging

from django.db import close_old_connections

from flywheel_site.demo.canary import demo_canary_traffic
from flywheel_site.demo.cycles import demo_cycles_train

log = logging.getLogger("flywheel.demo")
# One job id: a second `make run` while the first one's cycles are queued adds nothing.
JOB_ID = "demo-cycles"


class _Log:
    """What `load_demo` would have printed, to the worker's log, a line per write."""

    def write(self, line: str) -> None:
        log.info("demo: %s", line)


def demo_cycles_run(dataset_name: str, preset: str) -> None:
    close_old_connections()
    demo_cycles_train(dataset_name=dataset_name, stdout=_Log(), preset=preset)


def demo_canary_traffic_run() -> None:
    """A minute of simulated users for the demo's canary (flywheel_site.demo.canary); does
    nothing unless the demo left one running."""
    sent = demo_canary_traffic()
    if sent is not None:
        log.info("demo canary traffic: %s", sent)
