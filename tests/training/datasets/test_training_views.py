"""Dataset pages: admin only, freeze, version page with manifest, chart, diff and downloads,
quarantine; a past version is shown and downloaded as it was, with no database writes."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from flywheel_site.access import FORBIDDEN
from tests.support import training as th
from tests.support.databases import shared_rows
from tests.support.personas import person
from tests.support.training import old, registered
from training.datasets import services, views
from training.datasets.forms import REASON_REQUIRED
from training.errors import TrainingError
from training.models import Dataset, DatasetVersion, GoldPair, ModelVersion, Quarantine
from training.registry import services as registry

FREEZE = {"number": "1", "confirm": "on"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(admin):
    return services.dataset_create(name="support", user=admin, eval_fraction=0.2)


@pytest.fixture
def v1(dataset, admin):
    for _ in range(10):
        th.approved(occurred_at=old())
    return services.dataset_version_freeze(dataset=dataset, user=admin)[0]


PAGES = [
    ("get", "/datasets/"),
    ("post", "/datasets/"),
    ("get", "/datasets/quarantines/"),
    ("post", "/datasets/quarantines/"),
    ("get", "/datasets/support/"),
    ("post", "/datasets/support/freeze/"),
    ("get", "/datasets/support/v1/"),
    ("get", "/datasets/support/v1/diff/"),
    ("get", "/datasets/support/v1/files/manifest.json"),
    ("get", "/datasets/support/v1/files/dpo_standard/train.jsonl"),
    ("post", "/datasets/support/v1/quarantine/"),
]


class TestWhoMayOpenThem:
    """Every dataset page, refused to all but admins, against one frozen version made for
    the class (44 tests each froze their own)."""

    @pytest.fixture(scope="class")
    def v1(self, django_db_setup, django_db_blocker):
        with shared_rows(django_db_blocker):
            admin = person("ada", "admin")
            dataset = services.dataset_create(name="support", user=admin, eval_fraction=0.2)
            for _ in range(10):
                th.approved(occurred_at=old())
            yield services.dataset_version_freeze(dataset=dataset, user=admin)[0]

    @pytest.mark.parametrize(("method", "url"), PAGES)
    @pytest.mark.parametrize("persona", ["annotator", "curator", "outsider"])
    def test_only_admins_may_use_the_dataset_pages(
        self, request, as_user, v1, method, url, persona
    ):
        client = as_user(request.getfixturevalue(persona))
        response = getattr(client, method)(url, {"reason": "x", "number": "2"})
        assert response.status_code == 403
        assert FORBIDDEN in response.content.decode()
        assert DatasetVersion.objects.count() == 1
        assert not Quarantine.objects.exists()

    @pytest.mark.parametrize(("method", "url"), PAGES)
    def test_anonymous_visitors_are_sent_to_log_in(self, client, v1, method, url):
        response = getattr(client, method)(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_the_datasets_page_lists_datasets_with_their_latest_version(as_user, admin, v1):
    th.approved(occurred_at=old())
    services.gold_pairs_sync()
    th.approved(occurred_at=old())  # approved, not yet gold
    response = as_user(admin).get("/datasets/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/datasets/support/"' in page
    assert 'href="/datasets/support/v1/"' in page
    row = next(r for r in response.context["rows"] if r["dataset"].name == "support")
    assert row["new_gold"] == 1
    assert response.context["pending_gold"] == 1


def test_an_admin_creates_a_dataset(as_user, admin):
    response = as_user(admin).post(
        "/datasets/",
        {
            "name": "sft-answers",
            "kind": "sft",
            "formats": ["sft_conversational"],
            "lag_days": 0,
            "eval_fraction": 0.1,
            "near_dup_threshold": 0.9,
            "train_threshold": 100,
        },
        follow=True,
    )
    dataset = Dataset.objects.get(name="sft-answers")
    assert (dataset.kind, dataset.lag_days, dataset.formats) == ("sft", 0, ["sft_conversational"])
    assert views.DATASET_CREATED.format(name="sft-answers") in response.content.decode()


def test_a_dataset_format_must_suit_its_kind(as_user, admin):
    response = as_user(admin).post(
        "/datasets/",
        {
            "name": "bad",
            "kind": "sft",
            "formats": ["dpo_standard"],
            "lag_days": 14,
            "eval_fraction": 0.1,
            "near_dup_threshold": 0.9,
            "train_threshold": 100,
        },
    )
    assert response.status_code == 422
    assert not Dataset.objects.filter(name="bad").exists()
    expected = services.ERR_FORMAT_FOR_KIND.format(
        fmt="dpo_standard", kind="sft", allowed="sft_conversational"
    )
    assert expected in response.content.decode()


def test_a_reserved_name_is_refused():
    with pytest.raises(TrainingError) as error:
        services.dataset_create(name="quarantines")
    assert str(error.value) == services.ERR_RESERVED_NAME.format(name="quarantines")


def test_freeze_from_the_page_makes_a_version_and_a_second_click_makes_none(
    as_user, admin, dataset
):
    for _ in range(6):
        th.approved(occurred_at=old())
    client = as_user(admin)
    page = client.get("/datasets/support/").content.decode()
    assert 'name="number" value="1"' in page
    response = client.post("/datasets/support/freeze/", FREEZE, follow=True)
    version = DatasetVersion.objects.get()
    counts = version.manifest["counts"]
    assert response.redirect_chain[-1][0] == "/datasets/support/v1/"
    assert (
        services.FREEZE_CREATED.format(version=version, train=counts["train"], eval=counts["eval"])
        in response.content.decode()
    )
    # The same form submitted again (a double click, or a second admin).
    again = client.post("/datasets/support/freeze/", FREEZE, follow=True)
    assert DatasetVersion.objects.count() == 1
    assert services.FREEZE_UNCHANGED.format(version=version) in again.content.decode()


def test_a_freeze_without_its_confirmation_freezes_nothing(as_user, admin, dataset):
    th.approved(occurred_at=old())
    client = as_user(admin)
    assert 'name="confirm" required' in client.get("/datasets/support/").content.decode()

    response = client.post("/datasets/support/freeze/", {"number": "1"}, follow=True)

    assert response.redirect_chain[-1][0] == "/datasets/support/"  # a page that answers GET
    assert escape(views.FREEZE_UNCONFIRMED) in response.content.decode()
    assert not DatasetVersion.objects.exists()


def test_an_htmx_freeze_redirects_the_browser(as_user, admin, dataset):
    th.approved(occurred_at=old())
    response = as_user(admin).post(
        "/datasets/support/freeze/", FREEZE, headers={"HX-Request": "true"}
    )
    assert response["HX-Redirect"] == "/datasets/support/v1/"


def test_the_version_page_shows_manifest_counts_chart_and_files(as_user, admin, v1):
    response = as_user(admin).get("/datasets/support/v1/")
    page = response.content.decode()
    assert v1.manifest_sha256 in page
    assert response.context["counts"]["train"] == v1.manifest["counts"]["train"]
    bars = response.context["charts"]["Task type"]
    assert [b.label for b in bars] == ["support"]
    assert bars[0].total == 10
    assert 'class="bar"' in page
    for name in ("manifest.json", "dpo_standard/train.jsonl", "dpo_conversational/eval.jsonl"):
        assert f'href="/datasets/support/v1/files/{name}"' in page
    assert 'hx-get="/datasets/support/v1/diff/"' in page


def test_the_diff_names_pairs_added_and_removed_with_reasons(as_user, admin, dataset, v1):
    for _ in range(3):
        th.approved(occurred_at=old())
    pair = GoldPair.objects.filter(
        memberships__version=v1, memberships__split__in=["train", "eval"]
    ).first()
    fixed = services.gold_pair_correct(pair=pair, chosen="Better.", user=admin, reason="typo")
    services.dataset_version_freeze(dataset=dataset, user=admin)
    diff = as_user(admin).get("/datasets/support/v2/diff/").context["diff"]
    assert diff.added == 4  # three new pairs and the correction
    assert diff.removed == 1
    assert diff.removed_by_reason == {"superseded by a correction": 1}
    assert diff.removed_sample[0]["pair"] == pair.pk
    assert fixed.pk in {row["pair"] for row in diff.added_sample}
    fragment = as_user(admin).get("/datasets/support/v2/diff/", headers={"HX-Request": "true"})
    page = fragment.content.decode()
    assert "<html" not in page  # the HTMX fragment only
    assert "superseded by a correction" in page


def test_the_first_version_diff_is_everything_added(as_user, admin, v1):
    response = as_user(admin).get("/datasets/support/v1/diff/")
    assert response.context["diff"].added == 10
    assert response.context["diff"].removed == 0
    assert "<html" in response.content.decode()  # without HTMX: a whole page
    # Each pair listed says what it is about, not only its id.
    first = response.context["diff"].added_sample[0]
    pair = GoldPair.objects.get(pk=first["pair"])
    asked = first["asked"].rstrip("\u2026")
    assert asked and asked in " ".join(pair.prompt[-1]["content"].split())
    assert f'<td class="pair-snippet">{escape(first["asked"])}<br>' in response.content.decode()


def test_a_download_streams_the_file_recorded_in_the_manifest(as_user, admin, v1):
    response = as_user(admin).get("/datasets/support/v1/files/dpo_standard/train.jsonl")
    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content)
    expected = v1.manifest["files"]["dpo_standard/train.jsonl"]["sha256"]
    assert hashlib.sha256(body).hexdigest() == expected
    assert "attachment" in response["Content-Disposition"]
    manifest = as_user(admin).get("/datasets/support/v1/files/manifest.json")
    assert hashlib.sha256(b"".join(manifest.streaming_content)).hexdigest() == (v1.manifest_sha256)


@pytest.mark.parametrize(
    "file", ["nope.jsonl", "../../../etc/passwd", "sft_conversational/train.jsonl"]
)
def test_only_the_versions_own_files_can_be_downloaded(as_user, admin, v1, file):
    response = as_user(admin).get(f"/datasets/support/v1/files/{file}")
    assert response.status_code == 404


def test_an_unknown_version_is_404(as_user, admin, v1):
    assert as_user(admin).get("/datasets/support/v9/").status_code == 404


def test_viewing_and_downloading_a_past_version_writes_nothing(as_user, admin, dataset, v1):
    th.approved(occurred_at=old())
    services.dataset_version_freeze(dataset=dataset, user=admin)
    client = as_user(admin)
    before = {
        "versions": DatasetVersion.objects.count(),
        "events": DatasetVersion.pgh_event_model.objects.count(),
    }
    with CaptureQueriesContext(connection) as queries:
        for url in (
            "/datasets/support/v1/",
            "/datasets/support/v1/diff/",
            "/datasets/support/v1/files/dpo_conversational/train.jsonl",
            "/datasets/support/v1/files/manifest.json",
            "/datasets/support/",
            "/datasets/",
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            if response.streaming:
                b"".join(response.streaming_content)
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        and "django_session" not in q["sql"]
    ]
    assert writes == []
    assert before == {
        "versions": DatasetVersion.objects.count(),
        "events": DatasetVersion.pgh_event_model.objects.count(),
    }
    assert DatasetVersion.objects.get(number=1).status == "frozen"


def test_an_admin_quarantines_a_version_which_is_kept_and_marked(as_user, admin, v1):
    response = as_user(admin).post(
        "/datasets/support/v1/quarantine/", {"reason": "prompt injection wave"}, follow=True
    )
    v1.refresh_from_db()
    assert v1.status == "quarantined"
    assert views.VERSION_QUARANTINED.format(version=v1) in response.content.decode()
    page = as_user(admin).get("/datasets/support/v1/").content.decode()
    assert "prompt injection wave" in page
    again = as_user(admin).post(
        "/datasets/support/v1/quarantine/", {"reason": "twice"}, follow=True
    )
    assert (
        services.ERR_QUARANTINE_NOT_FROZEN.format(version=v1, status="quarantined")
        in again.content.decode()
    )
    assert Quarantine.objects.count() == 1


def test_a_version_quarantine_needs_a_reason(as_user, admin, v1):
    response = as_user(admin).post("/datasets/support/v1/quarantine/", {"reason": "  "})
    assert response.status_code == 422
    page = response.content.decode()
    assert REASON_REQUIRED in page
    # The question stays open, with what it would do.
    assert '<details class="confirm" open>' in page
    v1.refresh_from_db()
    assert v1.status == "frozen"
    assert not Quarantine.objects.exists()


def test_an_admin_quarantines_a_source_and_sees_the_affected_versions(as_user, admin, v1):
    from tests.support.curation import source

    fields = {"kind": "source", "source": source().pk, "reason": "leaked test traffic"}
    # First the page says what it would cover, and records nothing.
    asked = as_user(admin).post("/datasets/quarantines/", fields).content.decode()
    assert not Quarantine.objects.exists()
    assert f"covers <strong>{v1.members.exclude(split='excluded').count()}</strong>" in asked
    assert '<input type="hidden" name="confirm" value="1">' in asked
    response = as_user(admin).post(
        "/datasets/quarantines/", {**fields, "confirm": "1"}, follow=True
    )
    quarantine = Quarantine.objects.get()
    page = response.content.decode()
    assert (
        views.QUARANTINE_CREATED.format(pk=quarantine.pk, kind=quarantine.get_kind_display())
        in page
    )
    assert views.QUARANTINE_AFFECTS.format(versions="support v1") in page
    assert "leaked test traffic" in page


def test_a_window_quarantine_must_start_before_it_ends(as_user, admin):
    response = as_user(admin).post(
        "/datasets/quarantines/",
        {
            "kind": "window",
            "window_start": "2026-11-10T00:00",
            "window_end": "2026-11-03T00:00",
            "reason": "bad week",
        },
    )
    assert services.ERR_QUARANTINE_WINDOW in response.content.decode()
    assert not Quarantine.objects.exists()


def test_quarantining_a_version_from_its_page_rolls_back_models_trained_on_it(
    as_user, admin, dataset, v1
):
    th.approved(occurred_at=old())
    v2, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    first = registered(v1, status="promoted", promoted_at=timezone.now() - timedelta(days=1))
    second = registered(v2, baseline=first)
    registry.model_version_promote(model=second, user=admin, reason="better")
    response = as_user(admin).post(
        "/datasets/support/v2/quarantine/", {"reason": "injection"}, follow=True
    )
    page = response.content.decode()
    second.refresh_from_db()
    assert second.status == "rolled_back"
    assert ModelVersion.objects.get(status="promoted") == first
    assert views.MODELS_ROLLED_BACK.format(count=1, models=second.name) in page
    assert views.MODEL_RESTORED.format(previous=second.name, restored=first.name) in page
