"""Shared fixtures: real PostgreSQL (pytest-django's test database, one per xdist worker) and
the real Redis named by REDIS_URL (`make test` points it at database 1; each xdist worker moves
to a database of its own, see tests/support/workers.py).

Fixtures one area uses live in that area's conftest.py; fixtures several areas share live here
or in the support modules registered below."""

import collections
import gc
import os

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from flywheel_site import redis as fw_redis
from tests.support.api import ApiClient
from tests.support.personas import person
from tests.support.workers import worker_redis_url

pytest_plugins = [
    "tests.support.databases",
    "tests.support.live_server",
    "tests.support.tiny_detoxify",
    "tests.support.review",
    "tests.support.training",
]


def _use_the_workers_redis_database() -> None:
    # pytest-django has loaded the settings before this module is imported: both the settings
    # and the environment (which subprocesses such as gunicorn and rqworker inherit) move.
    url = worker_redis_url(django_settings.REDIS_URL)
    os.environ["REDIS_URL"] = url
    django_settings.REDIS_URL = url
    for queue in django_settings.RQ_QUEUES.values():
        queue["URL"] = url
    fw_redis.reset()


_use_the_workers_redis_database()


# Modules that keep one worker busy for half a minute or more (bench/RESULTS.md "Test suite
# wall time"). xdist hands out modules largest first by their number of tests, which sent the
# six-week demo (3 tests, three minutes) out last, and one worker finished the run alone on it.
# These go first, one to each worker: the first worker to need a database builds the template
# the others are cloned from (about 18 s on one core), so the second module needs none (a
# simulation) and keeps the other core busy meanwhile.
# Then every other module with a test marked slow, browser or stack (seconds a test), then the
# rest, each group largest first (`--no-loadscope-reorder` in the Makefile): the run ends on
# modules of quick tests, which even out the workers' ends. Handed out by size alone, modules
# of one to three slow tests (a canary simulation, the client stack, the CSP and run pages,
# 10 to 37 s each) came last, and the workers ended up to 11 s apart (1 s since).
HEAVIEST_FIRST = (
    "tests/browser/test_training_demo.py",
    "tests/training/registry/test_decisions_canary_simulation.py",
    "tests/system/test_supervised_stack.py",
    "tests/curation/test_sampling.py",
)
SLOW_MARKERS = ("slow", "browser", "stack")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    if missing := [path for path in HEAVIEST_FIRST if not (root / path).is_file()]:
        raise pytest.UsageError(f"tests/conftest.py HEAVIEST_FIRST names no file: {missing}")
    sizes = collections.Counter(item.nodeid.split("::")[0] for item in items)
    slow = {
        item.nodeid.split("::")[0]
        for item in items
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS)
    }

    def order(item):
        module = item.nodeid.split("::")[0]
        first = HEAVIEST_FIRST.index(module) if module in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
        return first, module not in slow, -sizes[module], module

    items.sort(key=order)  # stable: each module's tests keep their own order


# The garbage collector's full passes walk every object the process holds: Django, the test
# modules, torch once a test has imported it. Frozen after collection and again after each
# module (its fixtures torn down and collected first), what stays alive is no longer walked;
# cyclic garbage a test makes is still collected. The collector's time in a full run, summed
# over the workers, went from 74 s to 38 s (bench/RESULTS.md "Test suite wall time, third
# round"). A young generation of 10,000 objects rather than 700 makes the full passes over
# what a module built since (a migrated database, torch, 10,000 candidates) rarer still.
GC_YOUNG_OBJECTS = 10_000


def _freeze_the_heap() -> None:
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    _freeze_the_heap()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_OBJECTS, middle, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    if nextitem is None or nextitem.path != item.path:
        _freeze_the_heap()


def pytest_sessionfinish(session):
    # The xdist controller outlives every worker: it drops the template they were cloned
    # from, unless the run keeps its databases (--reuse-db, as `make test-fast` does).
    config = session.config
    controller = not hasattr(config, "workerinput") and config.getoption("numprocesses", None)
    if controller and (config.getoption("create_db") or not config.getoption("reuse_db")):
        from tests.support.databases import drop_template

        drop_template()


# Deletes every key matching any of its arguments (SCAN, so never a blocking KEYS).
_DELETE_MATCHING = """
for _, pattern in ipairs(ARGV) do
  local cursor = "0"
  repeat
    local page = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do redis.call("DEL", key) end
  until cursor == "0"
end
"""


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with empty queues, no rate-limit counters, no breaker."""
    fw_redis.reset()
    # One round trip instead of two SCAN walks and a DEL: this runs before every test.
    fw_redis.client().eval(_DELETE_MATCHING, 0, "flywheel:*", "rq:*")
    yield
    fw_redis.reset()


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    # PBKDF2 is slow by design; tests create many users and hash no real secrets. For the whole
    # session, so users made by a class- or module-scoped fixture get it too.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def ingest_token(db):
    from curation.services import api_token_create

    token, raw = api_token_create(source_name="shop-assistant", name="ci", scopes=["ingest"])
    return token, raw


@pytest.fixture
def api(ingest_token):
    """A client that sends JSON with the ingest token."""
    _, raw = ingest_token
    return ApiClient(raw)


@pytest.fixture
def toxicity_model(settings, tiny_detoxify):
    """Point the curation settings at the tiny Detoxify checkpoint."""
    from curation.toxicity import reset_scorer_cache

    settings.FLYWHEEL_TOXICITY_CHECKPOINT = tiny_detoxify.checkpoint
    settings.FLYWHEEL_TOXICITY_CONFIG_DIR = tiny_detoxify.config_dir
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = False
    reset_scorer_cache()
    yield tiny_detoxify
    reset_scorer_cache()


# --- personas: one per role, and one with none -------------------------------------------------


@pytest.fixture
def annotator(db):
    return person("annie", "annotator")


@pytest.fixture
def annotator2(db):
    return person("arthur", "annotator")


@pytest.fixture
def curator(db):
    return person("carla", "curator")


@pytest.fixture
def admin(db):
    return person("ada", "admin")


@pytest.fixture
def outsider(db):
    return person("oscar", None)


@pytest.fixture
def as_user(client):
    """Log a persona in: `as_user(curator)` returns the logged-in client."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    """Dataset exports go to a per-test directory, never into .run/exports (autouse: any test
    may reach code that freezes or exports a version)."""
    settings.FLYWHEEL_EXPORT_DIR = tmp_path / "exports"
    return settings.FLYWHEEL_EXPORT_DIR
