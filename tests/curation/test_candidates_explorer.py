"""The candidates explorer: full-text search on its GIN index, filters that
combine, state in the URL, counts with a cap, keyset pages both ways, and
hostile query strings refused."""

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.db import connection

from curation import selectors
from curation.forms import CandidateSearchForm
from curation.models import Candidate
from tests.support.explorer import candidate

pytestmark = pytest.mark.django_db

URL = "/curation/candidates/"


def ids(response) -> list[int]:
    return [c.pk for c in response.context["page"].rows]


def test_search_finds_words_in_the_prompt_the_chosen_and_the_rejected(as_user, curator):
    in_prompt = candidate(prompt="My invoice shows a duplicate charge")
    in_chosen = candidate(chosen="Refunds reach your card within five days.")
    in_rejected = candidate(rejected="Please contact the helpdesk about shipping.")
    client = as_user(curator)
    assert ids(client.get(URL, {"q": "invoice"})) == [in_prompt.pk]
    assert ids(client.get(URL, {"q": "refund"})) == [in_chosen.pk]  # stemmed: refunds
    assert ids(client.get(URL, {"q": "helpdesk shipping"})) == [in_rejected.pk]
    # websearch syntax: an unbalanced quote or a stray operator is no error.
    assert client.get(URL, {"q": '"duplicate charge'}).status_code == 200
    assert ids(client.get(URL, {"q": "invoice OR refunds"})) == [in_chosen.pk, in_prompt.pk]
    # The role of a message is not a word of the prompt.
    assert ids(client.get(URL, {"q": "user"})) == []


def test_each_row_shows_its_prompt_and_a_search_shows_the_words_found_marked(as_user, curator):
    found = candidate(prompt="My <b>invoice</b> shows a duplicate charge", model="m" * 60)
    client = as_user(curator)

    listed = client.get(URL).content.decode()
    searched = client.get(URL, {"q": "invoices"}).content.decode()  # stemmed

    # The prompt's own markup is text, never markup; only the search's marks are.
    assert "My &lt;b&gt;invoice&lt;/b&gt; shows a duplicate charge" in listed
    assert "<mark>invoice</mark>" in searched and "<b>" not in searched
    assert f'<td class="clip" title="{"m" * 60}">' in listed  # one line, full name on hover
    assert [c.snippet for c in selectors.candidates_page(filters={}).rows] == [
        "My &lt;b&gt;invoice&lt;/b&gt; shows a duplicate charge"
    ]
    assert found.pk in ids(client.get(URL, {"q": "invoices"}))


def test_the_search_uses_the_gin_index():
    """On 20,000 candidates PostgreSQL answers a search from candidate_search_gin
    (a Bitmap Index Scan), never by computing every row's document."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO curation_source (name, created_at) VALUES ('bulk', now());
            INSERT INTO curation_interaction (source_id, event_id, occurred_at, received_at,
                model, task_type, messages, response, usage, user_hash, session_id, segment,
                metadata, pii, curation_state, curation_error)
            SELECT (SELECT id FROM curation_source WHERE name = 'bulk'), 'b' || g, now(), now(),
                'm', 't', jsonb_build_array(jsonb_build_object('role', 'user',
                'content', 'question number ' || g)), 'answer ' || g, '{}', '', '', '', '{}',
                '{}', 'done', ''
            FROM generate_series(1, 20000) g;
            INSERT INTO curation_candidate (interaction_id, kind, prompt, chosen, rejected,
                feedback_ids, feedback_kinds, task_type, model, status, status_reason,
                failed_filter, exact_key, lsh_bands, toxicity_scorer, created_at,
                sample_stratum, priority_details)
            SELECT i.id, 'preference', i.messages, 'chosen text ' || i.id ||
                CASE WHEN i.id % 5000 = 0 THEN ' zebra' ELSE '' END, i.response, '[]', '[]',
                't', 'm', 'passed', '', '', 'k' || i.id, '{}', '', now(), '', '{}'
            FROM curation_interaction i;
            ANALYZE curation_candidate;
            """
        )
    filters = CandidateSearchForm({"q": "zebra"})
    assert filters.is_valid()
    query = selectors.candidates_filtered(filters.filters()).order_by("-pk")[:51]
    plan = query.explain()
    assert "candidate_search_gin" in plan, plan
    assert len(list(query)) == 4


def test_filters_combine(as_user, curator):
    hit = candidate(task_type="support", model="m1", status="passed", quality=0.8, toxicity=0.01)
    candidate(task_type="support", model="m1", status="failed", quality=0.8, toxicity=0.01)
    candidate(task_type="support", model="m2", status="passed", quality=0.8, toxicity=0.01)
    candidate(task_type="support", model="m1", status="passed", quality=0.3, toxicity=0.01)
    candidate(task_type="support", model="m1", status="passed", quality=0.8, toxicity=0.5)
    candidate(task_type="support", model="m1", status="passed", quality=0.8, source="other")
    query = {
        "task_type": "support",
        "model": "m1",
        "status": "passed",
        "quality_min": "0.6",
        "toxicity_max": "0.1",
        "source": hit.interaction.source_id,
        "kind": "preference",
    }
    response = as_user(curator).get(URL, query)
    assert ids(response) == [hit.pk]
    assert response.context["count"] == 1


def test_the_date_range_is_inclusive_of_both_days(as_user, curator):
    days = [datetime(2026, 3, d, 23, 30, tzinfo=UTC) for d in (1, 2, 3)]
    made = []
    for day in days:
        c = candidate()
        Candidate.objects.filter(pk=c.pk).update(created_at=day)
        made.append(c.pk)
    response = as_user(curator).get(URL, {"created_from": "2026-03-02", "created_to": "2026-03-02"})
    assert ids(response) == [made[1]]


def test_select_options_come_from_the_strata_and_the_sources(as_user, curator):
    candidate(task_type="billing", model="m1")
    candidate(task_type="support", model="m2", source="app2")
    candidate(task_type="support", model="m2")
    fields = as_user(curator).get(URL).context["form"].fields
    assert fields["task_type"].widget.choices == [
        ("", "any"),
        ("billing", "billing"),
        ("support", "support"),
    ]
    assert [value for value, _ in fields["model"].widget.choices] == ["", "m1", "m2"]
    assert [name for _, name in fields["source"].widget.choices] == ["any", "app2", "tests"]


def test_the_url_state_round_trips(as_user, curator):
    candidate(task_type="support", model="m1", status="passed", failed_filter="length", toxicity=0)
    query = {
        "q": "password",
        "status": "passed",
        "kind": "preference",
        "failed_filter": "length",
        "task_type": "support",
        "model": "m1",
        "created_from": "2000-01-01",
        "toxicity_max": "0.1",
    }
    body = as_user(curator).get(URL, query).content.decode()
    assert 'value="password"' in body
    for value in ("passed", "length", "support", "m1"):
        assert f'<option value="{value}" selected>' in body
    assert 'value="2000-01-01"' in body
    assert '<option value="0.1" selected>0.1</option>' in body
    # The bulk links carry the same filter.
    assert '<strong id="count">1</strong>' in body
    assert urlencode(query).replace("&", "&amp;") + "&amp;action=reject" in body


def test_keyset_pages_both_ways_stay_put_under_inserts():
    made = [candidate().pk for _ in range(7)]  # ascending ids
    first = selectors.candidates_page(filters={}, size=3)
    assert [c.pk for c in first.rows] == made[6:3:-1]
    assert first.newer is None
    candidate()  # a newer row arrives: the older pages do not move
    second = selectors.candidates_page(filters={}, before=first.older, size=3)
    assert [c.pk for c in second.rows] == made[3:0:-1]
    third = selectors.candidates_page(filters={}, before=second.older, size=3)
    assert [c.pk for c in third.rows] == [made[0]]
    assert third.older is None
    back = selectors.candidates_page(filters={}, after=third.newer, size=3)
    assert [c.pk for c in back.rows] == made[3:0:-1]
    assert back.newer is not None and back.older == made[1]


def test_the_page_links_keep_the_filter_and_work_without_javascript(as_user, curator):
    made = [candidate(task_type="support").pk for _ in range(selectors.PAGE_SIZE + 1)]
    candidate(task_type="billing")
    client = as_user(curator)
    response = client.get(URL, {"task_type": "support"})
    older = response.context["page"].older
    assert older == made[1]
    body = response.content.decode()
    link = f"?task_type=support&amp;before={older}"
    assert f'<a rel="next" href="{link}" hx-get="{link}"' in body
    second = client.get(URL, {"task_type": "support", "before": older})
    assert ids(second) == [made[0]]
    newer = second.context["page"].newer
    assert f'rel="prev" href="?task_type=support&amp;after={newer}"' in second.content.decode()
    assert ids(client.get(URL, {"task_type": "support", "after": newer})) == made[:0:-1]


def test_the_count_is_exact_up_to_a_cap(monkeypatch, as_user, curator):
    for _ in range(4):
        candidate()
    assert selectors.candidates_count(filters={}, cap=10) == (4, False)
    assert selectors.candidates_count(filters={}, cap=3) == (3, True)
    monkeypatch.setattr(selectors, "COUNT_CAP", 3)
    monkeypatch.setattr(selectors.candidates_count, "__kwdefaults__", {"cap": 3, "max_id": None})
    body = as_user(curator).get(URL).content.decode()
    assert '<strong id="count">3+</strong>' in body


def test_htmx_gets_the_list_alone(as_user, curator):
    candidate()
    body = as_user(curator).get(URL, headers={"HX-Request": "true"}).content.decode()
    assert body.strip().startswith('<div id="list"')


@pytest.mark.parametrize(
    "query",
    [
        {"created_from": "2026-02-31"},
        {"created_from": "yesterday"},
        {"created_from": "2026-03-05", "created_to": "2026-03-01"},
        {"q": "x" * 5000},
        {"task_type": "t" * 500},
        {"quality_min": "abc"},
        {"quality_min": "NaN"},
        {"toxicity_max": "inf"},
        {"toxicity_max": "1.5"},
        {"status": "nonsense"},
        {"kind": "<script>"},
        {"failed_filter": "drop table"},
        {"source": "-1"},
        {"before": "abc"},
        {"before": "99999999999999999999999"},
        {"before": "5", "after": "3"},
    ],
)
def test_hostile_parameters_are_a_400(as_user, curator, query):
    candidate()
    response = as_user(curator).get(URL, query)
    assert response.status_code == 400
    assert "This search cannot be run" in response.content.decode()
