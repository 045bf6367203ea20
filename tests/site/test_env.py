import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from curation.models import FeedbackKind
from flywheel_site.env import database_from_url, env_bool, env_choice, env_float, env_int, env_list
from flywheel_site.settings.registry import CANARY_METRICS
from flywheel_site.settings.runs import TRAINERS
from tests.support import ROOT
from training.models import TrainingRun

SETTINGS_DIR = ROOT / "flywheel_site" / "settings"
# The first argument of every env_* call in the settings modules.
READ = re.compile(r"\benv_\w+\(\s*\"([A-Z][A-Z0-9_]+)\"")
README_ROW = re.compile(r"^\| (`[A-Z][A-Z0-9_]+`(?:, `[A-Z][A-Z0-9_]+`)*) \|", re.M)


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False), ("", True)]
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", True) is expected


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (lambda: env_bool("X_V", False), "maybe", "X_V must be true or false, got 'maybe'"),
        (lambda: env_int("X_V", 1), "ten", "X_V must be an integer, got 'ten'"),
        (lambda: env_int("X_V", 1, minimum=1), "0", "X_V must be >= 1, got 0"),
        (lambda: env_float("X_V", 0.5, maximum=1), "1.5", "X_V must be <= 1, got 1.5"),
        (
            lambda: env_choice("X_V", ("original", "unbiased"), "original"),
            "biased",
            "X_V must be one of original, unbiased, got 'biased'",
        ),
    ],
)
def test_bad_values_fail_loudly_with_the_variable_name(monkeypatch, reader, raw, message):
    monkeypatch.setenv("X_V", raw)
    with pytest.raises(ImproperlyConfigured) as excinfo:
        reader()
    assert str(excinfo.value) == message


def test_env_list_splits_on_commas(monkeypatch):
    monkeypatch.setenv("X_L", "a.example, b.example,,")
    assert env_list("X_L", []) == ["a.example", "b.example"]


def test_database_url_is_parsed_and_only_postgres_is_accepted():
    db = database_from_url("postgres://u:p%40ss@db.internal:6543/fly?sslmode=require")
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u",
        "p@ss",
        "db.internal",
        "6543",
        "fly",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL is required"):
        database_from_url("mysql://u@db.internal/fly")


def test_env_choice_takes_the_default_when_unset_or_empty(monkeypatch):
    monkeypatch.setenv("X_C", "")
    assert env_choice("X_C", ("a", "b"), "b") == "b"
    monkeypatch.setenv("X_C", "a")
    assert env_choice("X_C", ("a", "b"), "b") == "a"


def test_the_readme_documents_every_variable_the_settings_read_and_no_other():
    read = {
        name
        for module in SETTINGS_DIR.glob("*.py")
        for name in READ.findall(module.read_text(encoding="utf-8"))
    }
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = {name.strip("`") for row in README_ROW.findall(readme) for name in row.split(", ")}
    assert read - documented == set()
    # The rest of the table is read outside the settings (the env file, the scripts).
    elsewhere = " ".join(
        path.read_text(encoding="utf-8")
        for pattern in ("flywheel_site/*.py", "scripts/*", "Makefile")
        for path in ROOT.glob(pattern)
        if path.is_file()
    )
    assert {name for name in documented - read if name not in elsewhere} == set()


def test_the_settings_choices_match_the_models_they_stand_for():
    kinds = set(FeedbackKind.values) - {FeedbackKind.RATING, FeedbackKind.COMMENT}
    assert set(CANARY_METRICS) == {"bad_outcome", *kinds}
    assert set(TRAINERS) == set(TrainingRun.Trainer.values)
