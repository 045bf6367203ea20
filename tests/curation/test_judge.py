"""The LLM judge (curation/judge.py): the real client against a real local HTTP server
that speaks the OpenAI chat completions protocol, deterministic and scripted per test.
Timeouts, 5xx, malformed answers and 429 with Retry-After all hold the candidate."""

import contextlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from curation import filters, judge, pipeline, policies
from curation.models import Candidate, FilterDecision, JudgeVerdict, SampleDraw
from review import selectors
from review.models import ReviewItem
from tests.support.curation import GOOD_EDIT, edited
from tests.support.http import http_serve
from tests.support.review import make_items, review

pytestmark = pytest.mark.django_db

PASS = {
    "verdict": "pass",
    "scores": {"safety": 1.0, "neutrality": 0.9, "factual_consistency": 0.8},
    "reason": "Accurate and neutral.",
}
FAIL = {**PASS, "verdict": "fail", "reason": "Invents a figure."}


class JudgeServer:
    """Answers POST /v1/chat/completions from a script: each entry is (status, body,
    headers, delay_s); the last entry repeats. Records every request body."""

    def __init__(self):
        self.script: list[tuple[int, bytes, dict, float]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.arrivals: list[float] = []
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                server.arrivals.append(time.monotonic())
                server.requests.append(json.loads(self.rfile.read(length)))
                server.headers.append(dict(self.headers))
                index = min(len(server.requests), len(server.script)) - 1
                status, body, headers, delay = server.script[index]
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                if delay:
                    threading.Event().wait(delay)
                with server.lock:
                    server.in_flight -= 1
                if self.path != "/v1/chat/completions":
                    status, body = 404, b"{}"
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (timeout tests)
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        # Port 0: the kernel picks a free port outside the ephemeral range's collisions.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def answer(self, content, *, status=200, headers=None, delay=0.0, raw=None):
        if raw is None:
            text = content if isinstance(content, str) else json.dumps(content)
            raw = json.dumps(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": "judge-test",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                }
            ).encode()
        self.script.append((status, raw, headers or {}, delay))
        return self


@pytest.fixture
def server(settings):
    srv = JudgeServer()
    http_serve(srv.httpd)
    settings.FLYWHEEL_JUDGE_URL = srv.url
    settings.FLYWHEEL_JUDGE_MODEL = "judge-test"
    settings.FLYWHEEL_JUDGE_API_KEY = "sk-test-key"
    settings.FLYWHEEL_JUDGE_TIMEOUT_S = 1.0
    settings.FLYWHEEL_JUDGE_MAX_RETRIES = 2
    settings.FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S = 1.0
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def judge_policy(*, note="", without=(), **changes):
    enabled = [n for n in filters.FILTER_ORDER if n not in (filters.TOXICITY, *without)]
    changes = {"enabled_filters": [*enabled, filters.LLM_JUDGE], **changes}
    return policies.policy_create(changes=changes, note=note)


def curated(event_id="j1") -> Candidate:
    interaction = edited(event_id)
    pipeline.interactions_curate(interaction_ids=[interaction.pk])
    return Candidate.objects.get(interaction=interaction)


def test_a_pass_verdict_passes_and_records_model_prompt_version_latency_and_reason(server):
    policy = judge_policy()
    server.answer(PASS)
    candidate = curated()
    assert candidate.status == "passed", candidate.status_reason
    decision = FilterDecision.objects.get(candidate=candidate, filter=filters.LLM_JUDGE)
    assert decision.passed and decision.score == 0.8
    assert decision.reason == "Judge pass: Accurate and neutral."
    assert decision.scorer == "judge-test"
    assert decision.scorer_version == judge.prompt_version(policy)
    assert decision.scorer_version.startswith(f"v{policy.version}-")
    assert decision.details["latency_ms"] >= 0 and decision.details["cached"] is False
    # The request is the protocol's: model, system rubric, the text as data, the key.
    (request,) = server.requests
    assert request["model"] == "judge-test"
    assert request["messages"][0] == {"role": "system", "content": policy.judge_rubric}
    assert json.loads(request["messages"][1]["content"])["answer"] == GOOD_EDIT
    assert server.headers[0]["Authorization"] == "Bearer sk-test-key"


def test_a_fail_verdict_fails_the_candidate_with_the_judges_reason(server):
    judge_policy()
    server.answer(FAIL)
    candidate = curated()
    assert candidate.status == "failed"
    assert candidate.failed_filter == filters.LLM_JUDGE
    assert candidate.status_reason == "Judge fail: Invents a figure."


def test_verdicts_are_cached_by_content_and_policy_version(server):
    policy = judge_policy()
    server.answer(PASS)
    first = curated("c1")
    pipeline.candidates_recurate(policy=policy, candidate_ids=[first.pk])
    assert len(server.requests) == 1
    decision = FilterDecision.objects.get(candidate=first, filter=filters.LLM_JUDGE)
    assert decision.details["cached"] is True
    # A new policy version asks again, even with the same rubric.
    pipeline.candidates_recurate(policy=judge_policy(note="next"), candidate_ids=[first.pk])
    assert len(server.requests) == 2
    assert JudgeVerdict.objects.count() == 2


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ([dict(content=PASS, delay=3.0)], "did not answer within 1 s"),
        ([dict(content=PASS, status=503)], "answered HTTP 503"),
        ([dict(content=PASS, status=400)], "answered HTTP 400"),
        ([dict(content="not json at all")], "gave no verdict"),
        ([dict(content=None, raw=b"<html>502</html>")], "gave no verdict"),
        ([dict(content={**PASS, "verdict": "maybe"})], "gave no verdict"),
        ([dict(content={**PASS, "scores": {"safety": 2}})], "gave no verdict"),
        ([dict(content=PASS, status=429, headers={"Retry-After": "3600"})], "rate limited"),
    ],
)
def test_no_verdict_holds_the_candidate(server, script, reason):
    judge_policy()
    for entry in script:
        server.answer(**entry)
    candidate = curated()
    assert candidate.status == "held"
    assert candidate.status_reason.startswith("Held: LLM judge: ")
    assert reason in candidate.status_reason
    assert not FilterDecision.objects.filter(filter=filters.LLM_JUDGE).exists()
    assert not JudgeVerdict.objects.exists()


def test_a_5xx_then_an_answer_is_retried(server):
    judge_policy()
    server.answer(PASS, status=500, headers={"Retry-After": "0"}).answer(PASS)
    assert curated().status == "passed"
    assert len(server.requests) == 2


def test_a_429_waits_for_retry_after_then_passes(server):
    judge_policy()
    server.answer(PASS, status=429, headers={"Retry-After": "0.4"}).answer(PASS)
    assert curated().status == "passed"
    first, second = server.arrivals
    assert second - first >= 0.4


def test_an_unreachable_judge_holds_and_the_sweep_rechecks_later(server, settings):
    judge_policy()
    settings.FLYWHEEL_JUDGE_URL = "http://127.0.0.1:9/v1"  # discard port: refused
    candidate = curated()
    assert candidate.status == "held"
    assert "unreachable" in candidate.status_reason
    settings.FLYWHEEL_JUDGE_URL = server.url
    server.answer(PASS)
    pipeline.held_recheck()
    candidate.refresh_from_db()
    assert candidate.status == "passed", candidate.status_reason


def test_an_enabled_judge_without_an_endpoint_holds(settings):
    settings.FLYWHEEL_JUDGE_URL = ""
    judge_policy()
    candidate = curated()
    assert candidate.status == "held"
    assert judge.NOT_CONFIGURED in candidate.status_reason


def test_distinct_texts_are_asked_concurrently_and_each_once(server, settings):
    settings.FLYWHEEL_JUDGE_CONCURRENCY = 4
    judge_policy(without=(filters.DEDUP_NEAR,))
    server.answer(PASS, delay=0.3)
    interactions = [edited(f"k{i}", final=f"{GOOD_EDIT} Case {i}.") for i in range(4)]
    pipeline.interactions_curate(interaction_ids=[i.pk for i in interactions])
    assert len(server.requests) == 4
    assert server.most_in_flight > 1
    assert set(Candidate.objects.values_list("status", flat=True)) == {"passed"}


def test_the_judge_is_off_unless_the_policy_enables_it(server):
    policies.policy_create(
        changes={"enabled_filters": [n for n in filters.FILTER_ORDER if n != filters.TOXICITY]}
    )
    assert curated().status == "passed"
    assert server.requests == []


def test_the_rubric_is_shown_and_versioned_on_the_policy_page(client, curator):
    client.force_login(curator)
    policy = judge_policy(judge_rubric="Judge strictly. Reply in JSON.")
    page = client.get("/curation/policy/")
    assert "Judge strictly. Reply in JSON." in page.content.decode()
    version_page = client.get(f"/curation/policy/v{policy.version}/")
    assert "Judge strictly. Reply in JSON." in version_page.content.decode()


def test_the_judges_agreement_with_reviewers_is_on_the_calibration_page(client, curator, annotator):
    policy = judge_policy()
    items = make_items(6)
    plan = [(True, "approve")] * 3 + [(False, "reject")] * 2 + [(False, "approve")]
    for item, (passed, decision) in zip(items, plan, strict=True):
        Candidate.objects.filter(pk=item.candidate_id).update(
            policy=policy,
            status="passed" if passed else "failed",
            failed_filter="" if passed else filters.LLM_JUDGE,
        )
        ReviewItem.objects.filter(pk=item.pk).update(audit=not passed, inclusion_probability=1.0)
        # The policy's draw: what calibration weighs the item by (review.calibration).
        SampleDraw.objects.create(
            candidate_id=item.candidate_id, policy=policy, stratum="support|m",
            inclusion_probability=1.0, audit_filter="" if passed else filters.LLM_JUDGE,
            drawn_at=timezone.now(),
        )  # fmt: skip
        FilterDecision.objects.create(
            candidate_id=item.candidate_id,
            policy=policy,
            filter=filters.LLM_JUDGE,
            passed=passed,
            score=0.9 if passed else 0.2,
            reason="Judge pass" if passed else "Judge fail",
            details={"model": "judge-test", "prompt_version": judge.prompt_version(policy)},
            scorer="judge-test",
            scorer_version=judge.prompt_version(policy),
        )
        review(item, annotator, decision)
    client.force_login(curator)
    html = client.get("/review/calibration/").content.decode()
    row = re.search(r'<tr id="calibration-llm_judge">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert cells[1] == "6"  # reviewed items carrying the judge's verdict
    # 5 of 6 verdicts match the reviewers (the approved "fail" does not).
    agreement = selectors.filter_agreement(since=None)
    (judge_row,) = [r for r in agreement if r["filter"] == filters.LLM_JUDGE]
    assert judge_row["n"] == 6 and round(judge_row["agreement"], 3) == round(5 / 6, 3)
