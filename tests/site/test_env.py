import pytest
from django.core.exceptions import ImproperlyConfigured

from flywheel_site.env import database_from_url, env_bool, env_float, env_int, env_list


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
