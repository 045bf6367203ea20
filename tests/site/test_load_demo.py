"""The demo generator (flywheel_site.demo.traffic) and `manage.py load_demo`."""

import collections
import hashlib
import io
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import Levenshtein
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from curation import dedup, pii
from curation.models import ApiToken, Feedback, FeedbackKind, Interaction, Source
from curation.schemas import FeedbackIn, InteractionIn
from flywheel_site.demo import accounts, loop
from flywheel_site.demo import traffic as demo
from flywheel_site.demo.load import CHUNK, chunks
from tests.support.databases import shared_rows

NOW = datetime(2025, 12, 1, 10, 30, tzinfo=UTC)
WINDOW = timedelta(days=demo.WINDOW_DAYS)


@pytest.fixture(scope="module")
def generated():
    return demo.generate(reference=NOW)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _similarity(a: str, b: str) -> float:
    # Written out here rather than taken from flywheel_site.demo.traffic, so the test measures
    # the edits independently of the code that made them.
    return 1 - Levenshtein.distance(a, b) / max(len(a), len(b))


def _edits(generated) -> list[tuple[dict, dict]]:
    interactions, feedback = generated
    by_id = {i["event_id"]: i for i in interactions}
    return [(f, by_id[f["interaction_event_id"]]) for f in feedback if f.get("final_text")]


def _texts(generated) -> list[str]:
    interactions, feedback = generated
    texts = [m["content"] for i in interactions for m in i["messages"]]
    texts += [i["response"] for i in interactions]
    texts += [f["final_text"] for f in feedback if f.get("final_text")]
    texts += [f["value"] for f in feedback if isinstance(f.get("value"), str)]
    return texts


# --- the generator --------------------------------------------------------------------


def test_it_gives_the_same_data_for_the_same_seed_and_reference():
    first = demo.generate(seed=7, reference=NOW, n_interactions=300)
    again = demo.generate(seed=7, reference=NOW, n_interactions=300)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


# sha256 of generate(reference=NOW) as JSON, taken before the text pools moved from
# curation/demo.py into curation/demo_data/*.json and the similarity measures into
# curation/filters.py: those moves changed nothing. Editing a pool or the generator changes
# the data on purpose; then update this.
GENERATED_SHA256 = "596d894b2d31530a0453dccdf2f43e977e32cf8156e7bfdfc46f021c5885b3fc"


def test_the_generated_data_is_byte_for_byte_what_it_was(generated):
    data = json.dumps(generated, sort_keys=True, ensure_ascii=False).encode()
    assert hashlib.sha256(data).hexdigest() == GENERATED_SHA256


def test_another_seed_gives_other_data():
    first = demo.generate(seed=7, reference=NOW, n_interactions=300)
    other = demo.generate(seed=8, reference=NOW, n_interactions=300)
    assert [i["response"] for i in first[0]] != [i["response"] for i in other[0]]


def _without_times(data) -> tuple[str, list[datetime]]:
    """The payloads without their timestamps, and the timestamps."""
    rows = [row for rows in data for row in rows]
    rest = [{k: v for k, v in row.items() if k != "occurred_at"} for row in rows]
    return json.dumps(rest, sort_keys=True), [_at(row["occurred_at"]) for row in rows]


def test_a_reference_whole_weeks_later_moves_the_dates_and_nothing_else():
    first, first_times = _without_times(demo.generate(reference=NOW, n_interactions=300))
    later = NOW + 5 * demo.WEEK
    other, other_times = _without_times(demo.generate(reference=later, n_interactions=300))
    assert other == first
    assert {b - a for a, b in zip(first_times, other_times, strict=True)} == {5 * demo.WEEK}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (demo.REFERENCE, demo.REFERENCE),
        (demo.REFERENCE + demo.WEEK - timedelta(seconds=1), demo.REFERENCE),
        (demo.REFERENCE + 3 * demo.WEEK, demo.REFERENCE + 3 * demo.WEEK),
        (demo.REFERENCE - timedelta(seconds=1), demo.REFERENCE - demo.WEEK),
        # Another zone names the same instant.
        (
            (demo.REFERENCE + demo.WEEK).astimezone(timezone(timedelta(hours=-8))),
            demo.REFERENCE + demo.WEEK,
        ),
    ],
)
def test_reference_before_is_the_last_whole_week_after_the_fixed_reference(now, expected):
    assert demo.reference_before(now) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"reference": datetime(2025, 12, 1, 10, 30)},
            demo.NAIVE_TIME.format(name="reference"),
        ),
        ({"reference": NOW, "n_interactions": 0}, demo.BAD_COUNT.format(n=0)),
    ],
)
def test_it_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        demo.generate(**kwargs)
    assert str(error.value) == message


def test_event_ids_are_numbered(generated):
    interactions, feedback = generated
    assert sorted(i["event_id"] for i in interactions) == [
        f"demo-i-{n:05d}" for n in range(1, 3001)
    ]
    assert [f["event_id"] for f in feedback] == [
        f"demo-f-{n:05d}" for n in range(1, len(feedback) + 1)
    ]


def test_every_payload_is_valid_for_the_ingest_api(generated):
    interactions, feedback = generated
    for payload in interactions:
        InteractionIn.model_validate(payload)
    for payload in feedback:
        FeedbackIn.model_validate(payload)
    assert len(interactions) == 3000


def test_timestamps_lie_in_the_six_weeks_before_the_reference(generated):
    interactions, feedback = generated
    times = [_at(x["occurred_at"]) for x in interactions + feedback]
    assert min(times) >= NOW - WINDOW
    assert max(times) <= NOW
    # The whole window is used, not just its recent end.
    assert min(times) < NOW - WINDOW + timedelta(days=1)


def test_feedback_comes_after_its_interaction(generated):
    interactions, feedback = generated
    at = {i["event_id"]: _at(i["occurred_at"]) for i in interactions}
    lags = [
        (_at(f["occurred_at"]) - at[f["interaction_event_id"]]).total_seconds()
        for f in feedback
        if f["interaction_event_id"] in at
    ]
    assert min(lags) > 0
    assert max(lags) < 3 * 3600


def test_traffic_follows_weekdays_and_working_hours(generated):
    interactions, _ = generated
    times = [_at(i["occurred_at"]) for i in interactions]
    per_weekday = collections.Counter(t.weekday() for t in times)
    weekday_mean = sum(per_weekday[d] for d in range(5)) / 5
    weekend_mean = (per_weekday[5] + per_weekday[6]) / 2
    assert weekday_mean > 2 * weekend_mean
    per_hour = collections.Counter(t.hour for t in times)
    assert sum(per_hour[h] for h in range(9, 17)) > 4 * sum(per_hour[h] for h in range(0, 8))


def test_the_newer_model_rolls_out_in_the_last_three_weeks(generated):
    interactions, _ = generated
    newer = [i for i in interactions if i["model"] == demo.NEW_MODEL]
    assert {i["model"] for i in interactions} == {demo.OLD_MODEL, demo.NEW_MODEL}
    assert min(_at(i["occurred_at"]) for i in newer) >= NOW - timedelta(days=demo.ROLLOUT_DAYS)
    last_week = [i for i in interactions if _at(i["occurred_at"]) >= NOW - timedelta(days=7)]
    share = sum(i["model"] == demo.NEW_MODEL for i in last_week) / len(last_week)
    assert share > 0.8


def test_task_types_include_a_rare_stratum(generated):
    interactions, _ = generated
    shares = collections.Counter(i["task_type"] for i in interactions)
    assert set(shares) == {"code_help", "summarisation", "support", "sql"}
    assert all(shares[t] > 600 for t in ("code_help", "summarisation", "support"))
    assert 0.01 <= shares["sql"] / len(interactions) <= 0.04


def test_some_conversations_have_several_turns(generated):
    interactions, _ = generated
    multi = [i for i in interactions if len(i["messages"]) > 2]
    assert 0.05 < len(multi) / len(interactions) < 0.2
    assert all(i["messages"][0]["role"] == "system" for i in interactions)
    assert all(m["messages"][-1]["role"] == "user" for m in multi)


def test_responses_are_plausible_in_length_usage_and_latency(generated):
    interactions, _ = generated
    words = [len(i["response"].split()) for i in interactions]
    assert sum(40 <= w <= 200 for w in words) / len(words) > 0.9
    assert max(words) <= 200
    for i in interactions:
        usage = i["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        # About four characters per token.
        assert 0.2 < usage["completion_tokens"] / len(i["response"]) < 0.3
        assert i["latency_ms"] > 0


def test_about_a_third_of_interactions_get_feedback(generated):
    interactions, feedback = generated
    with_feedback = {f["interaction_event_id"] for f in feedback}
    share = len(with_feedback & {i["event_id"] for i in interactions}) / len(interactions)
    assert 0.3 <= share <= 0.4


def test_every_feedback_kind_occurs(generated):
    _, feedback = generated
    kinds = collections.Counter(f["kind"] for f in feedback)
    assert set(kinds) == set(FeedbackKind.values)
    assert min(kinds.values()) >= 20


@pytest.mark.parametrize(
    ("flavour", "low", "high"),
    [
        # Half-open [low, high): a typo fix is above 0.95, a complete rewrite below 0.3,
        # and the edit band 0.3 to 0.9 is inclusive.
        ("typo fix", math.nextafter(0.95, 1), 1.0),
        ("substantial rewrite", 0.3, math.nextafter(0.9, 1)),
        ("complete rewrite", 0.0, 0.3),
    ],
)
def test_edits_come_in_three_flavours(generated, flavour, low, high):
    similarities = [_similarity(f["final_text"], i["response"]) for f, i in _edits(generated)]
    assert sum(low <= s < high for s in similarities) >= 25, flavour


def test_no_edit_falls_between_the_flavours(generated):
    similarities = [_similarity(f["final_text"], i["response"]) for f, i in _edits(generated)]
    between = [s for s in similarities if 0.9 < s <= 0.95 or s == 1.0]
    assert between == []
    assert len(similarities) > 200


def test_substantial_rewrites_are_the_main_band(generated):
    similarities = [_similarity(f["final_text"], i["response"]) for f, i in _edits(generated)]
    band = sum(0.3 <= s <= 0.9 for s in similarities)
    assert band / len(similarities) > 0.4


def test_about_two_percent_of_edits_are_toxic(generated):
    edits = _edits(generated)
    toxic = [(f, i) for f, i in edits if any(x in f["final_text"] for x in demo.TOXIC_LINES)]
    assert 1 <= len(toxic) <= 0.05 * len(edits)
    # Inside the edit band, so only the toxicity filter can catch them.
    assert all(0.3 <= _similarity(f["final_text"], i["response"]) <= 0.9 for f, i in toxic)
    assert all(f["kind"] == "edited" for f, _ in toxic)


def test_pii_is_planted_in_about_three_percent_and_nowhere_else(generated):
    interactions, _ = generated
    for text in _texts(generated):
        for match in pii.find_pii(text):
            span = text[match.start : match.end]
            assert (
                span in demo.PII_PHONES
                or span in demo.PII_CARDS
                or span.endswith(tuple(f"@{d}" for d in demo.PII_EMAIL_DOMAINS))
            ), span
    with_pii = [
        i
        for i in interactions
        if any(pii.find_pii(m["content"]) for m in i["messages"]) or pii.find_pii(i["response"])
    ]
    assert 0.015 <= len(with_pii) / len(interactions) <= 0.05
    kinds = {m.kind for text in _texts(generated) for m in pii.find_pii(text)}
    assert kinds == {"email", "phone", "card"}


@pytest.mark.slow
def test_near_duplicates_do_not_collapse_the_data(generated):
    interactions, _ = generated
    index = dedup.NearDupIndex()
    duplicates = 0
    for i in interactions:
        # The text curation signs: the whole prompt, then the answer.
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in i["messages"])
        sketch = dedup.minhash(prompt + "\n" + i["response"])
        if index.best_match(sketch):
            duplicates += 1
        else:
            index.add(i["event_id"], sketch)
    # Some repeats, as real traffic has, but most interactions are distinct.
    assert 0 < duplicates / len(interactions) < 0.12


def test_some_feedback_arrives_before_its_interaction(generated):
    interactions, feedback = generated
    parts = chunks(interactions, feedback)
    chunk_of = {x["event_id"]: n for n, (part_i, _) in enumerate(parts) for x in part_i}
    early = [
        f
        for n, (_, part_f) in enumerate(parts)
        for f in part_f
        if chunk_of.get(f["interaction_event_id"], -1) > n
    ]
    never = [f for f in feedback if f["interaction_event_id"] not in chunk_of]
    assert early
    assert never
    assert all(f["interaction_event_id"].startswith("demo-i-missing-") for f in never)


def test_chunks_keep_every_item_in_order_and_within_the_limit():
    interactions = [{"event_id": f"i{n}"} for n in range(1234)]
    feedback = [{"event_id": f"f{n}"} for n in range(567)]
    parts = chunks(interactions, feedback)
    assert all(len(i) + len(f) <= CHUNK for i, f in parts)
    assert [x for i, _ in parts for x in i] == interactions
    assert [x for _, f in parts for x in f] == feedback


# --- the command ------------------------------------------------------------------------


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@contextmanager
def demo_env_for(directory: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in (*accounts.PASSWORD_ENVS, "PORT"):
            patch.delenv(name, raising=False)
        # The simulated weeks freeze versions and may build the base model: not into .run/.
        with override_settings(
            FLYWHEEL_MODELS_DIR=directory / "models",
            FLYWHEEL_BASE_MODEL=directory / "models" / "base",
            FLYWHEEL_EXPORT_DIR=directory / "exports",
        ):
            yield


@pytest.fixture
def demo_env(tmp_path):
    with demo_env_for(tmp_path):
        yield


def test_passwords_come_from_the_environment(db, demo_env, monkeypatch):
    monkeypatch.setenv(accounts.ADMIN_PASSWORD_ENV, "correct-horse-battery")
    users = accounts.demo_users_create(**accounts.demo_passwords(os.environ))
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("correct-horse-battery")
    assert [u.password for u in users] == [
        "correct-horse-battery",
        accounts.DEFAULT_ANNOTATOR_PASSWORD,
        accounts.DEFAULT_CURATOR_PASSWORD,
    ]


def test_a_weak_password_is_refused(db, demo_env, monkeypatch):
    monkeypatch.setenv(accounts.ADMIN_PASSWORD_ENV, "short")
    with pytest.raises(CommandError) as error:
        _run("--interactions", "5")
    prefix = accounts.WEAK_PASSWORD.split("{problems}")[0].format(username="admin")
    assert str(error.value).startswith(prefix)
    assert "at least 12 characters" in str(error.value)
    # Refused before anything was loaded.
    assert not get_user_model().objects.exists()
    assert not Interaction.objects.exists()


def test_existing_accounts_are_left_alone(db):
    user = get_user_model().objects.create_user(username="admin", password="changed-by-owner-1")
    users = accounts.demo_users_create(
        admin_password=accounts.DEFAULT_ADMIN_PASSWORD,
        annotator_password=accounts.DEFAULT_ANNOTATOR_PASSWORD,
        curator_password=accounts.DEFAULT_CURATOR_PASSWORD,
    )
    user.refresh_from_db()
    assert user.check_password("changed-by-owner-1")
    assert not user.is_superuser
    assert users[0] == accounts.DemoUser("admin", "superuser", created=False, password=None)
    assert users[1].created


@pytest.mark.django_db
def test_the_demo_pins_its_policy_whatever_policy_the_database_starts_with():
    """A migrated database starts at policy v1 with min_per_stratum 20; a flushed one gets
    the model default (5). The demo samples the same candidates from either."""
    from curation import policies
    from curation.models import CurationPolicy

    start = policies.policy_create(changes={"min_per_stratum": 5})
    applied = accounts.demo_policy_apply()
    assert applied.version == start.version + 1
    assert applied.min_per_stratum == accounts.DEMO_POLICY["min_per_stratum"] == 20
    assert applied.note == accounts.DEMO_POLICY_NOTE
    # Already the demo's: nothing new.
    assert accounts.demo_policy_apply() == applied
    assert CurationPolicy.objects.order_by("-version").first() == applied


def test_shifted_moves_every_timestamp_and_nothing_else():
    data = demo.generate(reference=NOW, n_interactions=50)
    moved = demo.shifted(data, timedelta(hours=30))
    before, before_times = _without_times(data)
    after, after_times = _without_times(moved)
    assert after == before
    assert {b - a for a, b in zip(before_times, after_times, strict=True)} == {timedelta(hours=30)}


@pytest.mark.django_db
class TestTheLoadedDemo:
    """One 300-interaction load (six simulated weeks) shared by the tests that read it; each
    test's own transaction, a savepoint inside the load's, is rolled back as usual."""

    @pytest.fixture(scope="class")
    def loaded(self, django_db_setup, django_db_blocker, tmp_path_factory):
        with shared_rows(django_db_blocker), demo_env_for(tmp_path_factory.mktemp("demo")):
            with time_machine.travel(NOW, tick=False):
                out = _run("--interactions", "300")
            yield out

    def test_load_demo_stores_the_generated_events(self, loaded):
        # The command ends the demo's window whole weeks after its fixed reference.
        reference = demo.reference_before(NOW)
        _, feedback = demo.generate(reference=reference, n_interactions=300)
        source = Source.objects.get(name=demo.DEMO_SOURCE)
        assert Interaction.objects.filter(source=source).count() == 300
        assert Feedback.objects.filter(source=source).count() == len(feedback)
        assert f"created 300 interactions and {len(feedback)} feedback events" in loaded

    def test_a_second_run_creates_nothing_and_says_so(self, loaded):
        counts = (Interaction.objects.count(), Feedback.objects.count(), ApiToken.objects.count())
        # Days later: the window may have moved a week, but the same ids add nothing.
        with time_machine.travel(NOW + timedelta(days=3), tick=False):
            again = _run("--interactions", "300")
        assert (
            Interaction.objects.count(),
            Feedback.objects.count(),
            ApiToken.objects.count(),
        ) == (counts)
        assert "nothing new created" in again
        assert "fw_" not in again

    def test_it_creates_a_token_for_every_scope_the_demo_uses_and_prints_it_once(self, loaded):
        token = ApiToken.objects.get(source__name=demo.DEMO_SOURCE, name=demo.DEMO_TOKEN_NAME)
        assert token.scopes == ["export", "ingest", "metrics", "route"]
        assert token.hint in loaded

    def test_feedback_is_linked_unless_its_interaction_never_came(self, loaded):
        unlinked = Feedback.objects.filter(interaction__isnull=True)
        linked = Feedback.objects.filter(interaction__isnull=False)
        assert linked.count() > 50
        assert unlinked.exists()
        assert all(f.interaction_event_id.startswith("demo-i-missing-") for f in unlinked)
        assert all(f.interaction.event_id == f.interaction_event_id for f in linked)

    def test_stored_rows_have_pii_redacted(self, loaded):
        interactions = list(Interaction.objects.all())
        stored = json.dumps(
            [[i.messages, i.response] for i in interactions]
            + list(Feedback.objects.values_list("final_text", "comment")),
            ensure_ascii=False,
        )
        assert "@example." not in stored
        assert not any(card in stored for card in demo.PII_CARDS)
        assert not any(phone in stored for phone in demo.PII_PHONES)
        assert any(i.pii for i in interactions)
        assert "[EMAIL]" in stored

    def test_it_creates_the_demo_accounts_and_prints_their_credentials(self, loaded):
        users = get_user_model().objects
        admin, annotator = users.get(username="admin"), users.get(username="annotator")
        assert admin.is_superuser and admin.is_staff and admin.is_active
        assert not annotator.is_superuser and not annotator.is_staff and annotator.is_active
        assert admin.check_password(accounts.DEFAULT_ADMIN_PASSWORD)
        assert annotator.check_password(accounts.DEFAULT_ANNOTATOR_PASSWORD)
        assert "http://127.0.0.1:8000/" in loaded
        assert f"admin / {accounts.DEFAULT_ADMIN_PASSWORD}" in loaded
        assert f"annotator / {accounts.DEFAULT_ANNOTATOR_PASSWORD}" in loaded
        curator = users.get(username=accounts.CURATOR_USERNAME)
        assert not curator.is_superuser and not curator.is_staff and curator.is_active
        assert curator.check_password(accounts.DEFAULT_CURATOR_PASSWORD)
        assert list(curator.groups.values_list("name", flat=True)) == ["curator"]
        assert f"curator / {accounts.DEFAULT_CURATOR_PASSWORD}" in loaded

    def test_the_demo_ends_at_the_moment_it_is_loaded(self, loaded):
        # NOW is days past the last whole week after the fixed reference: the weeks still end
        # at NOW, and every row is stamped inside them, arrival included.
        assert NOW - demo.reference_before(NOW) > timedelta(days=1)
        interactions = Interaction.objects.all()
        last = max(i.occurred_at for i in interactions)
        assert NOW - timedelta(days=1) < last < NOW
        assert all(i.occurred_at <= i.received_at <= NOW for i in interactions)
        assert all(f.received_at <= NOW for f in Feedback.objects.all())

    def test_the_policy_in_force_when_the_demo_ends_samples_as_the_product_advises(self, loaded):
        from curation import policies
        from curation.models import CurationPolicy

        current = policies.policy_current()
        assert 0.05 <= current.sample_rate <= 0.10
        assert 0.05 <= current.needs_answer_rate <= 0.10
        assert current.note == loop.FINAL_POLICY_NOTE
        # The simulated weeks sampled everything, and the command says what is in force now.
        assert CurationPolicy.objects.filter(sample_rate=1.0).exists()
        assert loop.POLICY_IN_FORCE.format(version=current.version, **loop.FINAL_POLICY) in loaded

    def test_policy_versions_are_dated_in_the_order_they_were_made(self, loaded):
        """The migration's v1 is made before the demo's weeks are simulated in the past: the
        demo stamps it at their start, so /curation/policy/ reads in date order."""
        from curation.models import CurationPolicy

        dates = list(
            CurationPolicy.objects.order_by("version").values_list("created_at", flat=True)
        )
        assert len(dates) >= 3
        assert dates == sorted(dates)
        assert NOW - WINDOW - timedelta(days=7) < dates[0] < dates[1] <= NOW
