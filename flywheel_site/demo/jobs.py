"""The RQ entry point `make run` leaves the demo's training cycles to (`load_demo
--background`): thin, idempotent (a cycle with a run is not trained again)."""

import logging

from django.db import close_old_connections

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
