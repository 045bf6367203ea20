"""The env file `scripts/services.sh start` writes and manage.py / wsgi.py read."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import (
    BAD_ENV_LINE,
    DEFAULT_ENV_FILE,
    ENV_FILE_VARIABLE,
    MISSING_ENV_FILE,
    env_file_load,
)
from tests.support import ROOT

SERVICES = ROOT / "scripts" / "services.sh"


def test_it_fills_only_what_the_environment_lacks(tmp_path):
    path = tmp_path / "env"
    path.write_text("# written by services.sh\n\nSECRET_KEY=from-file\nREDIS_URL=redis://x/0\n")
    environ = {ENV_FILE_VARIABLE: str(path), "REDIS_URL": "redis://mine/3"}
    assert env_file_load(environ) == path
    assert environ["SECRET_KEY"] == "from-file"
    assert environ["REDIS_URL"] == "redis://mine/3"


def test_a_value_keeps_its_equals_signs(tmp_path):
    path = tmp_path / "env"
    path.write_text("DATABASE_URL=postgres://u@h:1/db?options=-c%20a=b\n")
    environ = {ENV_FILE_VARIABLE: str(path)}
    env_file_load(environ)
    assert environ["DATABASE_URL"] == "postgres://u@h:1/db?options=-c%20a=b"


def test_an_empty_pointer_reads_nothing():
    environ = {ENV_FILE_VARIABLE: ""}
    assert env_file_load(environ) is None
    assert environ == {ENV_FILE_VARIABLE: ""}


def test_without_a_pointer_it_reads_the_checkouts_run_env():
    assert DEFAULT_ENV_FILE == ROOT / ".run" / "env"


def test_a_missing_file_it_was_pointed_at_is_an_error(tmp_path):
    path = tmp_path / "nope"
    with pytest.raises(ImproperlyConfigured) as error:
        env_file_load({ENV_FILE_VARIABLE: str(path)})
    assert str(error.value) == MISSING_ENV_FILE.format(path=path)


def test_a_bad_line_names_its_number_and_not_its_content(tmp_path):
    path = tmp_path / "env"
    path.write_text("SECRET_KEY=ok\nsupersecretvalue\n")
    with pytest.raises(ImproperlyConfigured) as error:
        env_file_load({ENV_FILE_VARIABLE: str(path)})
    assert str(error.value) == BAD_ENV_LINE.format(path=path, number=2)
    assert "supersecret" not in str(error.value)


def _start(env_file: Path) -> subprocess.CompletedProcess:
    # With both URLs set, `start` starts nothing and only writes the env file.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "DATABASE_URL": "postgres://someone@db.internal:5432/flywheel",
        "REDIS_URL": "redis://cache.internal:6379/0",
        ENV_FILE_VARIABLE: str(env_file),
    }
    return subprocess.run(
        [str(SERVICES), "start"], env=env, capture_output=True, text=True, check=True
    )


def _read(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_services_start_writes_the_users_urls_and_a_secret_kept_across_runs(tmp_path):
    env_file = tmp_path / "env"
    _start(env_file)
    first = _read(env_file)
    assert first["DATABASE_URL"] == "postgres://someone@db.internal:5432/flywheel"
    assert first["REDIS_URL"] == "redis://cache.internal:6379/0"
    assert len(first["SECRET_KEY"]) >= 50
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    _start(env_file)
    assert _read(env_file) == first
    assert [p.name for p in tmp_path.iterdir()] == ["env"]  # no temporary file left


def test_services_env_prints_the_local_urls_and_no_secret():
    env = {"PATH": os.environ["PATH"], "FLYWHEEL_PG_PORT": "5999", "FLYWHEEL_REDIS_PORT": "6999"}
    out = subprocess.run(
        [str(SERVICES), "env", "1"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == [
        "export DATABASE_URL=postgres://postgres@127.0.0.1:5999/flywheel",
        "export REDIS_URL=redis://127.0.0.1:6999/1",
    ]
