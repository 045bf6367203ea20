"""Flywheel settings, one module per part of the system they configure; every value a
deployment may set comes from the environment through the typed readers in
`flywheel_site.env`, and a bad value stops start-up with the variable's name. Each variable
is documented in README.md ("Settings"), in a table per module below.

- `base`: Django itself (secret, hosts, apps, database, Redis and RQ, static, logging)
- `security`: HTTPS, the content security policy, the login lockout
- `ingest`: the ingest API's limits and the end-user hash key
- `curation`: curation jobs, the sweeper, bulk actions, toxicity
- `review`: the review queues
- `datasets`: where frozen versions are exported
- `runs`: training runs, the trainers, the eval gate, the training trigger
- `registry`: promotion, canary experiments, the route and the monitor
- `webhooks`: delivery, retries and the SSRF guard
- `metrics`: the dashboard's rollups and health verdicts
- `audit`: the audit chain's verification and retention

DJANGO_SETTINGS_MODULE stays `flywheel_site.settings`.
"""

from flywheel_site.settings.audit import *  # noqa: F403
from flywheel_site.settings.base import *  # noqa: F403
from flywheel_site.settings.curation import *  # noqa: F403
from flywheel_site.settings.datasets import *  # noqa: F403
from flywheel_site.settings.ingest import *  # noqa: F403
from flywheel_site.settings.metrics import *  # noqa: F403
from flywheel_site.settings.registry import *  # noqa: F403
from flywheel_site.settings.review import *  # noqa: F403
from flywheel_site.settings.runs import *  # noqa: F403
from flywheel_site.settings.security import *  # noqa: F403
from flywheel_site.settings.webhooks import *  # noqa: F403
