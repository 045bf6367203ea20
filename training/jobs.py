"""Where RQ found training's jobs before training became sub-packages.

RQ stores a job's function as a dotted path string in Redis. Jobs queued (or left in
a registry for retry) by a release before the split name `training.jobs.*`; these
aliases let a worker of this release still run them. New jobs are enqueued under
their sub-package's path. Drop this module once no such job can remain queued.
"""

from training.runs.jobs import training_run_execute, trigger_check
from training.webhooks.jobs import webhook_deliver, webhooks_sweep

__all__ = ["training_run_execute", "trigger_check", "webhook_deliver", "webhooks_sweep"]
