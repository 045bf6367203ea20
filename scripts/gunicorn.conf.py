"""gunicorn's settings for `make run` (scripts/Procfile) and for the tests that serve the app
the same way. Command-line flags (bind, workers, log level) still win over these.

- Prometheus multiprocess mode: each worker writes its counters to files under
  PROMETHEUS_MULTIPROC_DIR (scripts/run.sh sets and empties it); a worker that exits is
  marked dead here, so its live gauges stop counting while its counters are kept.
- FLYWHEEL_LOG_FORMAT=json: gunicorn's own messages go out as the app's JSON lines, and its
  access log (a text format of its own) is off; the app logs each request itself
  (logger `flywheel.http`), with the route, status, duration and request id.
- The Server header says "flywheel", not "gunicorn": gunicorn has no setting for it, and
  naming the server software helps only whoever probes the app (issue 18, row 9).
- Threaded workers (gthread), WEB_THREADS each (default 4), with HTTP keep-alive. gunicorn's
  sync workers close the connection after every response, so a client that posts event after
  event (an SDK) paid a TCP handshake for each, and one slow or idle client held a whole
  worker. Measured with bench/ingest_compare.py: single events at concurrency 8 went from
  about 405 to 440-470 requests/s (bench/RESULTS.md). Django keeps one database connection
  per thread: a node opens up to workers x threads of them. WEB_KEEPALIVE_S (default 75)
  must exceed the idle timeout of the proxy in front (60 s on an AWS load balancer), or the
  proxy may send a request on a connection gunicorn is closing and answer 502.
- Each worker freezes what it built loading the app (`gc.freeze`): the garbage collector's
  full collections then scan only what requests made.
- gthread workers have no per-request timeout (gunicorn's `timeout` only restarts a worker
  whose main loop stops). A request waiting on a database row lock gives up after
  FLYWHEEL_DB_LOCK_TIMEOUT_MS (30 s here, unless set), and the database connection's TCP
  keepalives (settings) end a wait on a server that vanished."""

import gc
import os

import gunicorn.http.wsgi

from flywheel_site.env import env_int

worker_class = "gthread"
threads = env_int("WEB_THREADS", 4, minimum=1, maximum=64)
keepalive = env_int("WEB_KEEPALIVE_S", 75, minimum=1, maximum=3600)
# Read by the settings in every worker (forked from here).
os.environ.setdefault("FLYWHEEL_DB_LOCK_TIMEOUT_MS", "30000")

_JSON = os.environ.get("FLYWHEEL_LOG_FORMAT", "text") == "json"

accesslog = None if _JSON else "-"

# Read by every response gunicorn writes; set here, in the master, before workers fork.
gunicorn.http.wsgi.SERVER = "flywheel"

if _JSON:
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "flywheel_site.logformat.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False}
        },
    }


def post_worker_init(worker):
    # What the worker built loading the app (Django, the apps, their modules: about 170,000
    # objects) lives as long as the worker. Frozen, it is left out of the collector's full
    # collections, which rescanned all of it every 20 or so 500-event batches: about 90 ms
    # each, 9% of a batch's app CPU on average (bench/RESULTS.md).
    gc.collect()
    gc.freeze()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
