"""One migrated template database per run, cloned for each pytest-xdist worker.

Migrating costs about 25 s of CPU; with three workers on two cores each building its own
database spent over a minute of the run's CPU on the same migrations. Here the first worker
to take a PostgreSQL advisory lock migrates `<test name>_template`, and every worker's own
database (`test_flywheel_gw0`, ...: names stay distinct) is a `CREATE DATABASE ... TEMPLATE`
copy, well under a second. Outside xdist pytest-django's own setup runs unchanged.

`--reuse-db` keeps working: a worker database that exists is kept and migrated as before, a
missing one is cloned from the template, itself kept and brought up to date."""

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.core.management.commands import flush as flush_command
from django.db import connection, connections, transaction
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django.test.utils import setup_databases

from flywheel_site.deadlock import retry_on_deadlock

# Any constant both workers agree on; it only has to differ from other advisory locks.
_LOCK_KEY = 0x46_4C_59_57  # "FLYW"


def template_name() -> str:
    """The template's name: the test database's name without the worker's `_gwN` suffix (the
    xdist controller, which has none, finds the same name)."""
    name = settings.DATABASES["default"]["TEST"]["NAME"]
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return f"{name.removesuffix(f'_{worker}') if worker else name}_template"


@contextmanager
def _maintenance() -> Iterator[psycopg.Connection]:
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or None,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        yield conn


def _exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def _built_by(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        [name],
    ).fetchone()
    return row[0] if row else None


def _migrate_template(name: str, *, keepdb: bool, verbosity: int) -> None:
    """Build (or with keepdb bring up to date) the template through Django's own creation,
    so it holds exactly what a per-worker `setup_databases` would have made."""
    test = settings.DATABASES["default"]["TEST"]
    worker_db, test["NAME"] = test["NAME"], name
    try:
        connection.creation.create_test_db(
            verbosity=verbosity, autoclobber=True, serialize=False, keepdb=keepdb
        )
    finally:
        # CREATE DATABASE ... TEMPLATE refuses a template anyone is connected to.
        connection.close()
        test["NAME"] = worker_db


def _clone_worker_database(*, run_id: str, keepdb: bool, verbosity: int) -> None:
    template = template_name()
    worker_db = settings.DATABASES["default"]["TEST"]["NAME"]
    quote = connection.ops.quote_name
    with _maintenance() as conn:
        # Held while migrating and cloning: one worker migrates, the others wait and clone.
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            if keepdb and _exists(conn, worker_db):
                return  # kept from an earlier run: create_test_db(keepdb=True) migrates it
            # A fresh run rebuilds the template once: the first worker marks it with the run's
            # id, and the others find the mark and only clone.
            if keepdb or _built_by(conn, template) != run_id:
                _migrate_template(template, keepdb=keepdb, verbosity=verbosity)
                conn.execute(f"COMMENT ON DATABASE {quote(template)} IS {_literal(run_id)}")
            conn.execute(f"DROP DATABASE IF EXISTS {quote(worker_db)} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {quote(worker_db)} TEMPLATE {quote(template)}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def _literal(text: str) -> str:
    # COMMENT takes no bind parameters; the run id is xdist's hex uuid, quoted all the same.
    return "'" + text.replace("'", "''") + "'"


def drop_template() -> None:
    """Called by the xdist controller at the end of a run that did not keep its databases."""
    with _maintenance() as conn:
        conn.execute(
            f"DROP DATABASE IF EXISTS {connection.ops.quote_name(template_name())} WITH (FORCE)"
        )


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """pytest-django's fixture of the same name, with each xdist worker's database cloned."""
    workerinput = getattr(request.config, "workerinput", None)
    keepdb = django_db_keepdb and not django_db_createdb
    verbosity = request.config.option.verbose
    with django_db_blocker.unblock():
        if workerinput is not None and django_db_use_migrations:
            _clone_worker_database(
                run_id=workerinput["testrunuid"], keepdb=keepdb, verbosity=verbosity
            )
            # The worker's database exists now: Django only checks it and applies nothing.
            keepdb_here = True
        else:
            keepdb_here = keepdb
        db_cfg = setup_databases(
            verbosity=verbosity, interactive=False, aliases={"default"}, keepdb=keepdb_here
        )
        # A kept database may come from a run stopped before its last flush.
        _seed()
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            _drop_test_databases(db_cfg)


def _drop_test_databases(db_cfg) -> None:
    """Django's teardown_databases, with FORCE: a connection some test's thread or child left
    open (it ends with the session anyway) made the DROP fail the session's last test."""
    for wrapper, old_name, destroy in db_cfg:
        if not destroy:
            continue
        test_name = wrapper.settings_dict["NAME"]
        wrapper.close()
        wrapper.settings_dict["NAME"] = old_name
        with _maintenance() as conn:
            conn.execute(
                f"DROP DATABASE IF EXISTS {connection.ops.quote_name(test_name)} WITH (FORCE)"
            )


@contextmanager
def shared_rows(django_db_blocker) -> Iterator[None]:
    """For a class- or module-scoped fixture whose rows several tests read (pytest-django's
    recipe for wider-scoped data): they are made in a transaction that each test's own nests
    in as a savepoint, and rolled back when the scope ends. Plain `db` tests only: a
    transactional test's flush would end it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


# --- flushing: DELETE instead of TRUNCATE ---------------------------------------------------
#
# A transactional test ends with Django's flush, one TRUNCATE of every table: PostgreSQL gives
# each of the ~80 tables (and their indexes) new files, about half a second on a quiet machine
# (2.5 s under load). The few rows a test leaves go in milliseconds with DELETE. Foreign keys
# and the history and append-only triggers are triggers, which session_replication_role =
# replica turns off for the flush's own transaction: every table is emptied but the two below
# that only change with the models, so nothing is left dangling. That role needs a superuser
# (the test cluster's `postgres`); with another user, or when sequences are to be reset or the
# truncation to cascade beyond Django's tables, the flush stays Django's own.

_truncate = PostgresOperations.sql_flush


def _superuser(ops) -> bool:
    if not hasattr(ops.connection, "_flywheel_superuser"):
        with ops.connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ops.connection._flywheel_superuser = bool(cursor.fetchone()[0])
    return ops.connection._flywheel_superuser


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if not tables or reset_sequences or allow_cascade or not _superuser(self):
        self.connection.flywheel_kept_metadata = False
        return _truncate(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    # The content types and permissions are kept: they only change with the models, and with
    # them in place the post_migrate that follows a flush (which re-created them and re-checked
    # every trigger, about 110 ms a transactional test) has nothing to do and is skipped.
    self.connection.flywheel_kept_metadata = True
    # execute_sql_flush runs these in one transaction: SET LOCAL ends with it.
    return [
        "SET LOCAL session_replication_role = replica;",
        # Table names from Django's introspection, quoted: no outside input.
        *(
            f"DELETE FROM {self.quote_name(table)};"  # noqa: S608
            for table in tables
            if table not in _KEPT_TABLES
        ),
    ]


_KEPT_TABLES = frozenset({"django_content_type", "auth_permission"})
_emit_post_migrate = flush_command.emit_post_migrate_signal


def _post_migrate_after_flush(verbosity, interactive, db, **kwargs):
    wrapper = connections[db]
    if getattr(wrapper, "flywheel_kept_metadata", False):
        wrapper.flywheel_kept_metadata = False
        return
    _emit_post_migrate(verbosity, interactive, db, **kwargs)


# --- the rows migrations create, put back by every flush -------------------------------------
#
# A flush empties the tables the migrations seeded too. Each test used to put these rows back
# before it started (five queries, and five inserts after any flush, since a plain test's own
# inserts are rolled back): about 10 ms a test. The flush that removed them now restores them,
# committed, so every test starts with them: the template has them from the migrations, a plain
# test rolls back, and a transactional test ends with a flush.
_SEEDS = (
    ("curation.migrations.0003_default_policy", "create_default_policy"),
    ("review.migrations.0002_roles", "create_roles"),
    ("review.migrations.0005_default_guidelines", "create"),
)

_execute_flush = PostgresOperations.execute_sql_flush


def _seed() -> None:
    from django.apps import apps

    for module, function in _SEEDS:
        getattr(importlib.import_module(module), function)(apps, None)


# Nothing else should hold these rows by now (tests/support/live_server.py waits for the live
# server's requests), but a deadlock the flush lost would leave the test's rows to every later
# test of the worker: the flush is run again, as the services are.
_execute_flush_retrying = retry_on_deadlock(_execute_flush)


def _execute_sql_flush(self, sql_list):
    _execute_flush_retrying(self, sql_list)
    _seed()


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PostgresOperations, "sql_flush", _sql_flush)
        patch.setattr(PostgresOperations, "execute_sql_flush", _execute_sql_flush)
        patch.setattr(flush_command, "emit_post_migrate_signal", _post_migrate_after_flush)
        yield
