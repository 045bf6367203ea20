"""The RQ job class every worker runs (settings `RQ["JOB_CLASS"]`).

A row a worker changes must be as attributable as one changed in a request: the history
middleware names the user and path there, and this names the job here. Every audit event
written while a job runs carries `job` (the RQ job id), `queue` and `func` in its
pghistory context; services that know a run add `run` inside it. It is also a RequestJob, so
the job runs and logs under the id of the request that enqueued it."""

import pghistory

from flywheel_site.request_context import RequestJob


class AuditedJob(RequestJob):
    def _execute(self):
        with pghistory.context(job=self.id, queue=self.origin, func=self.func_name):
            return super()._execute()
