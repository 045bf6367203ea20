"""What web processes add to the database settings: a lock timeout (threaded gunicorn
workers have no request timeout) and TCP keepalives on every connection."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

SHOW = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SHOW lock_timeout")
    print(cursor.fetchone()[0])
print(connection.get_connection_params()["keepalives_idle"])
"""
CONFIG = """
import os, runpy
os.environ.pop("FLYWHEEL_DB_LOCK_TIMEOUT_MS", None)
config = runpy.run_path("scripts/gunicorn.conf.py")
print(config["worker_class"], config["threads"], config["keepalive"])
print(os.environ["FLYWHEEL_DB_LOCK_TIMEOUT_MS"])
import gc
before = gc.get_freeze_count()
config["post_worker_init"](None)
print(before == 0 < gc.get_freeze_count())
"""


def _python(code: str, **env) -> list[str]:
    environment = {**os.environ, "DATABASE_URL": settings.DATABASE_URL, **env}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split("\n")[:-1]


def test_the_lock_timeout_setting_reaches_the_connection():
    assert _python(SHOW, FLYWHEEL_DB_LOCK_TIMEOUT_MS="1234") == ["1234ms", "30"]
    assert _python(SHOW, FLYWHEEL_DB_LOCK_TIMEOUT_MS="") == ["0", "30"]


def test_the_gunicorn_config_gives_web_processes_threads_a_lock_timeout_and_a_frozen_heap():
    assert _python(CONFIG, WEB_THREADS="", WEB_KEEPALIVE_S="") == ["gthread 4 75", "30000", "True"]
