"""One interaction that cannot be curated is set aside as failed; the rest of
its chunk, later jobs and every sweep carry on. Poisoned rows are written by
raw SQL, as old data or a hand edit would be, and run through a real RQ worker."""

import io

import django_rq
import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from curation import jobs, pipeline
from curation.candidates import DEDUP_LOCK
from curation.models import Candidate, CurationRun, Interaction
from curation.views import NOT_FAILED, RETRIED
from tests.support.curation import edits, no_toxicity
from tests.support.jobs import run_jobs

transactional = pytest.mark.django_db(transaction=True)

# A BEFORE INSERT trigger that refuses one interaction's candidate: a failure
# inside PostgreSQL, which aborts the transaction (a Python error does not).
_POISON_TRIGGER = """
CREATE FUNCTION test_poison_candidate() RETURNS trigger AS $$
BEGIN
    IF NEW.model = 'poison-model' THEN
        RAISE EXCEPTION 'poisoned candidate for %', NEW.interaction_id;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_poison BEFORE INSERT ON curation_candidate
    FOR EACH ROW EXECUTE FUNCTION test_poison_candidate();
"""
_DROP_POISON_TRIGGER = """
DROP TRIGGER IF EXISTS test_poison ON curation_candidate;
DROP FUNCTION IF EXISTS test_poison_candidate();
"""


def sql(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def poison_messages(interaction: Interaction) -> None:
    # A JSON number where a list of messages belongs: building its candidate raises.
    sql("UPDATE curation_interaction SET messages = '42'::jsonb WHERE id = %s", [interaction.pk])


def poison_year(interaction: Interaction, value: str = "0001-01-01 00:00:00+00 BC") -> None:
    sql(
        "UPDATE curation_interaction SET occurred_at = %s::timestamptz WHERE id = %s",
        [value, interaction.pk],
    )


def states() -> dict[str, str]:
    return dict(Interaction.objects.values_list("event_id", "curation_state"))


@pytest.fixture
def poison_trigger():
    sql(_POISON_TRIGGER)
    yield
    sql(_DROP_POISON_TRIGGER)


@transactional
def test_poisoned_rows_fail_alone_and_the_rest_of_their_chunk_is_curated(poison_trigger):
    no_toxicity()
    rows = edits(6, "p")
    poison_messages(rows[1])
    poison_year(rows[2])  # readable: curated like any other row
    sql("UPDATE curation_interaction SET model = 'poison-model' WHERE id = %s", [rows[4].pk])
    poison_year(rows[5], "10000-06-01 00:00:00+00")
    assert django_rq.get_queue("curation").count == 1  # one chunk, one job
    run_jobs("curation")
    assert states() == {
        "p0": "done",
        "p1": "failed",
        "p2": "done",
        "p3": "done",
        "p4": "failed",
        "p5": "done",
    }
    failed = {i.event_id: i for i in Interaction.objects.filter(curation_state="failed")}
    assert failed["p1"].curation_error.startswith("curation raised TypeError(")
    assert "poisoned candidate for" in failed["p4"].curation_error
    assert all(i.curation_failed_at is not None for i in failed.values())
    curated = set(Candidate.objects.values_list("interaction__event_id", flat=True))
    assert curated == {"p0", "p2", "p3", "p5"}
    run = CurationRun.objects.get()
    assert (run.status, run.error) == ("succeeded", "")
    assert (run.interactions, run.candidates, run.errored) == (6, 4, 2)
    assert run.passed + run.failed == 4


def write_steps(queries) -> int:
    """Each write step (and each row marked failed) claims its rows first."""
    return sum("FOR UPDATE SKIP LOCKED" in q["sql"] for q in queries)


@pytest.mark.django_db
def test_a_failing_chunk_is_halved_not_redone_one_row_at_a_time():
    no_toxicity()
    clean = [i.pk for i in edits(5, "c")]
    with CaptureQueriesContext(connection) as fast:
        pipeline.interactions_curate(interaction_ids=clean)
    assert write_steps(fast.captured_queries) == 1
    assert not Interaction.objects.filter(pk__in=clean).exclude(curation_state="done").exists()
    rows = edits(8, "p")
    poison_messages(rows[2])
    with CaptureQueriesContext(connection) as slow:
        pipeline.interactions_curate(interaction_ids=[i.pk for i in rows])
    # The poisoned row raises while its chunk is prepared, before any write: 8 -> 4 -> 2 -> 1
    # fail there; the clean halves (4, 2, 1) write once each and the bad row is marked
    # failed once: 4 write steps where one row at a time would take 8.
    assert write_steps(slow.captured_queries) == 4
    assert [states()[f"p{i}"] for i in range(8)] == ["done"] * 2 + ["failed"] + ["done"] * 5


@transactional
def test_the_sweeper_completes_every_run_despite_a_poisoned_row(settings):
    settings.FLYWHEEL_SWEEP_GRACE_S = 0
    no_toxicity()
    rows = edits(4, "p")
    django_rq.get_queue("curation").empty()  # the job was lost: the sweeper finds the rows
    poison_messages(rows[0])
    jobs.sweep()
    assert states() == {"p0": "failed", "p1": "done", "p2": "done", "p3": "done"}
    jobs.sweep()  # the failed row is not retried on every sweep, and stalls nothing
    assert states() == {"p0": "failed", "p1": "done", "p2": "done", "p3": "done"}
    runs = list(CurationRun.objects.values_list("trigger", "status", "errored"))
    assert runs == [("sweeper", "succeeded", 1)]


@pytest.mark.django_db
def test_errors_of_the_surroundings_leave_the_chunk_pending_for_a_retry(settings):
    """The database refusing a lock is nobody's row: nothing is marked failed."""
    no_toxicity()
    rows = edits(2, "p")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", [DEDUP_LOCK])
        sql("SET LOCAL lock_timeout = '200ms'")
        with pytest.raises(OperationalError):
            pipeline.interactions_curate(interaction_ids=[i.pk for i in rows])
    assert set(states().values()) == {"pending"}


@pytest.mark.django_db
def test_the_curate_command_reports_rows_set_aside():
    no_toxicity()
    rows = edits(3, "p")
    poison_messages(rows[0])
    out = io.StringIO()
    call_command("curate", stdout=out, stderr=io.StringIO())
    assert "curated 3 interactions: 2 candidates" in out.getvalue()
    assert "1 interaction(s) raised and were set aside as failed" in out.getvalue()
    assert states() == {"p0": "failed", "p1": "done", "p2": "done"}


# --- the runs page and the retry action ----------------------------------------


@transactional
def test_the_runs_page_lists_failed_rows_and_a_curator_retries_one(as_user, curator):
    no_toxicity()
    rows = edits(3, "p")
    poison_messages(rows[1])
    run_jobs("curation")
    bad = Interaction.objects.get(pk=rows[1].pk)
    client = as_user(curator)
    page = client.get("/curation/runs/").content.decode()
    assert f'id="failed-{bad.pk}"' in page
    assert "Failed interactions (1)" in page
    assert "curation raised TypeError(" in page
    # The cause is fixed (here: the row repaired), then retried.
    sql(
        'UPDATE curation_interaction SET messages = \'[{"role": "user", "content": "Hi"}]\''
        "::jsonb WHERE id = %s",
        [bad.pk],
    )
    response = client.post(f"/curation/interactions/{bad.pk}/retry/", follow=True)
    assert response.redirect_chain == [("/curation/runs/", 302)]
    assert RETRIED.format(n=1) in response.content.decode()
    bad.refresh_from_db()
    assert (bad.curation_state, bad.curation_error, bad.curation_failed_at) == ("pending", "", None)
    assert django_rq.get_queue("curation").count == 1  # enqueued once committed
    run_jobs("curation")
    bad.refresh_from_db()
    assert bad.curation_state == "done"
    assert Candidate.objects.filter(interaction=bad).count() == 1
    assert f'id="failed-{bad.pk}"' not in client.get("/curation/runs/").content.decode()


@transactional
def test_retry_all_sends_every_failed_row_back(as_user, curator):
    no_toxicity()
    rows = edits(3, "p")
    poison_messages(rows[0])
    poison_messages(rows[2])
    run_jobs("curation")
    response = as_user(curator).post("/curation/interactions/retry/")
    assert response.status_code == 302
    assert set(states().values()) == {"pending", "done"}
    assert Interaction.objects.filter(curation_state="pending").count() == 2
    run_jobs("curation")  # still poisoned: failed again, with the error recorded afresh
    assert Interaction.objects.filter(curation_state="failed").count() == 2


@transactional
def test_retrying_a_row_that_is_not_failed_changes_nothing(as_user, curator):
    no_toxicity()
    (row,) = edits(1, "p")
    run_jobs("curation")
    client = as_user(curator)
    response = client.post(f"/curation/interactions/{row.pk}/retry/", follow=True)
    assert NOT_FAILED.format(pk=row.pk) in response.content.decode()
    assert states() == {"p0": "done"}
    assert django_rq.get_queue("curation").count == 0
    assert client.post("/curation/interactions/999999/retry/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/curation/interactions/retry/", "/curation/interactions/1/retry/"]
)
def test_retry_access(client, as_user, annotator, curator, url):
    anonymous = client.post(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert as_user(annotator).post(url).status_code == 403
    client.logout()
    assert as_user(curator).get(url).status_code == 405  # a write is a POST


@pytest.mark.django_db
def test_an_annotator_cannot_retry_and_nothing_changes(as_user, annotator):
    no_toxicity()
    (row,) = edits(1, "p")
    poison_messages(row)
    pipeline.interactions_curate(interaction_ids=[row.pk])
    assert as_user(annotator).post(f"/curation/interactions/{row.pk}/retry/").status_code == 403
    assert states() == {"p0": "failed"}
