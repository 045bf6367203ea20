"""The LLM judge: an optional curation filter (`llm_judge`) that asks a judge model,
through an OpenAI-compatible chat completions endpoint, whether a candidate's chosen text
is safe, neutral and factually consistent with the conversation.

- The rubric (system prompt) is a policy field, so it is versioned with the policy; the
  prompt version recorded with each decision is "v<policy>-<sha256 of the rubric, 8 hex>".
- The answer must be JSON: {"verdict": "pass"|"fail", "scores": {"safety", "neutrality",
  "factual_consistency": numbers in [0, 1]}, "reason": text}. Anything else is no verdict.
- It fails closed: unreachable, timed out, an HTTP error after the retries, rate limited
  beyond FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S, or no verdict -> the candidate is held, and the
  sweep asks again later (as for the toxicity model).
- Verdicts are cached by content hash (judge model, conversation, chosen text) and policy
  version (JudgeVerdict); failures are not cached.

Requests run in a thread pool (FLYWHEEL_JUDGE_CONCURRENCY); the threads touch no database.
"""

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import urllib3
from django.conf import settings

from curation import filters
from curation.models import Candidate, CurationPolicy, JudgeVerdict

SCORE_KEYS = ("safety", "neutrality", "factual_consistency")
VERDICTS = {"pass": True, "fail": False}
REASON_MAX = 500
RESPONSE_MAX_BYTES = 1_000_000

NOT_CONFIGURED = "the LLM judge is enabled but FLYWHEEL_JUDGE_URL is not set"
UNREACHABLE = "the judge is unreachable ({error})"
TIMED_OUT = "the judge did not answer within {seconds:g} s"
HTTP_ERROR = "the judge answered HTTP {status}"
RATE_LIMITED = "the judge is rate limited (HTTP 429, retry after {wait})"
NO_VERDICT = "the judge gave no verdict ({why})"
HELD = "Held: LLM judge: {error}"
NO_TEXT = "No chosen text: not judged."
JUDGED = "Judge {verdict}: {reason}"


class JudgeUnavailable(Exception):
    """No verdict: the candidate is held, not passed."""


@dataclass(frozen=True)
class JudgeConfig:
    url: str
    model: str
    api_key: str
    timeout_s: float
    concurrency: int
    max_retries: int
    retry_after_max_s: float


@dataclass(frozen=True)
class Verdict:
    passed: bool
    scores: dict
    reason: str
    latency_ms: int


def judge_config() -> JudgeConfig | None:
    if not settings.FLYWHEEL_JUDGE_URL:
        return None
    return JudgeConfig(
        url=settings.FLYWHEEL_JUDGE_URL.rstrip("/") + "/chat/completions",
        model=settings.FLYWHEEL_JUDGE_MODEL,
        api_key=settings.FLYWHEEL_JUDGE_API_KEY,
        timeout_s=settings.FLYWHEEL_JUDGE_TIMEOUT_S,
        concurrency=settings.FLYWHEEL_JUDGE_CONCURRENCY,
        max_retries=settings.FLYWHEEL_JUDGE_MAX_RETRIES,
        retry_after_max_s=settings.FLYWHEEL_JUDGE_RETRY_AFTER_MAX_S,
    )


def prompt_version(policy: CurationPolicy) -> str:
    digest = hashlib.sha256(policy.judge_rubric.encode()).hexdigest()[:8]
    return f"v{policy.version}-{digest}"


def content_hash(*, model: str, prompt_messages: Sequence, chosen: str) -> str:
    canonical = json.dumps([model, list(prompt_messages), chosen], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=1)
def _pool() -> urllib3.PoolManager:
    # One pool per process, shared by the request threads (urllib3 pools are thread-safe).
    return urllib3.PoolManager(maxsize=16, retries=False)


def judge_ask(
    *,
    config: JudgeConfig,
    rubric: str,
    prompt_messages: Sequence,
    chosen: str,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """One verdict from the judge. Raises JudgeUnavailable when there is none."""
    body = json.dumps(
        {
            "model": config.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": rubric},
                {
                    "role": "user",
                    "content": json.dumps(
                        {"conversation": list(prompt_messages), "answer": chosen},
                        ensure_ascii=False,
                    ),
                },
            ],
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    for attempt in range(config.max_retries + 1):
        started = time.monotonic()
        status, data, retry_after = _post(config, body, headers)
        latency_ms = round((time.monotonic() - started) * 1000)
        if status == 200:
            return _parse(data, latency_ms)
        if status != 429 and status < 500:
            raise JudgeUnavailable(HTTP_ERROR.format(status=status))
        # 429 and 5xx are worth another try, after the server's Retry-After if it gave one.
        wait = retry_after if retry_after is not None else min(2.0**attempt, 8.0)
        if attempt == config.max_retries or wait > config.retry_after_max_s:
            if status == 429:
                raise JudgeUnavailable(RATE_LIMITED.format(wait=retry_after))
            raise JudgeUnavailable(HTTP_ERROR.format(status=status))
        sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


def _post(config: JudgeConfig, body: bytes, headers: dict) -> tuple[int, bytes, float | None]:
    timeout = urllib3.Timeout(total=config.timeout_s)
    try:
        response = _pool().request(
            "POST", config.url, body=body, headers=headers, timeout=timeout, preload_content=False
        )
        try:
            data = response.read(RESPONSE_MAX_BYTES + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.NewConnectionError as error:
        # Before TimeoutError: urllib3 2 makes a refused connection a ConnectTimeoutError too.
        raise JudgeUnavailable(UNREACHABLE.format(error=type(error).__name__)) from None
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        raise JudgeUnavailable(TIMED_OUT.format(seconds=config.timeout_s)) from None
    except urllib3.exceptions.ProtocolError as error:
        if "timed out" in str(error):
            raise JudgeUnavailable(TIMED_OUT.format(seconds=config.timeout_s)) from None
        raise JudgeUnavailable(UNREACHABLE.format(error=type(error).__name__)) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise JudgeUnavailable(UNREACHABLE.format(error=type(error).__name__)) from None
    if len(data) > RESPONSE_MAX_BYTES:
        raise JudgeUnavailable(NO_VERDICT.format(why="the response is too large"))
    return response.status, data, _retry_after(response.headers.get("Retry-After"))


def _retry_after(value: str | None) -> float | None:
    # Seconds only: an HTTP date would need the wall clock, and judges send seconds.
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _parse(data: bytes, latency_ms: int) -> Verdict:
    try:
        content = json.loads(data)["choices"][0]["message"]["content"]
        answer = json.loads(_unfenced(content))
        passed = VERDICTS[answer["verdict"]]
        scores = {key: answer["scores"][key] for key in SCORE_KEYS}
        reason = answer["reason"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeUnavailable(
            NO_VERDICT.format(why="the answer is not the JSON asked for")
        ) from None
    for key, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise JudgeUnavailable(NO_VERDICT.format(why=f"score {key} is not in [0, 1]"))
    if not isinstance(reason, str):
        raise JudgeUnavailable(NO_VERDICT.format(why="the reason is not text"))
    return Verdict(
        passed=passed,
        scores={k: float(v) for k, v in scores.items()},
        reason=reason.strip()[:REASON_MAX],
        latency_ms=latency_ms,
    )


def _unfenced(content: str) -> str:
    # Some models wrap JSON in a Markdown code fence even when asked not to.
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    return text


def judge_results(
    candidates: Sequence[Candidate], policy: CurationPolicy
) -> tuple[dict[tuple, filters.FilterResult], dict[tuple, str]]:
    """The judge's result for each candidate, or the reason it is held."""
    config = judge_config()
    version = prompt_version(policy)
    results: dict[tuple, filters.FilterResult] = {}
    held: dict[tuple, str] = {}
    to_judge = []
    for candidate in candidates:
        if candidate.chosen:
            to_judge.append(candidate)
        else:
            results[candidate.ref] = filters.FilterResult(
                filters.LLM_JUDGE, True, None, NO_TEXT, {"skipped": True}
            )
    if not to_judge:
        return results, held
    if config is None:
        return results, {c.ref: HELD.format(error=NOT_CONFIGURED) for c in to_judge}
    keys = {
        c.ref: content_hash(model=config.model, prompt_messages=c.prompt, chosen=c.chosen)
        for c in to_judge
    }
    cached = {
        v.content_hash: v
        for v in JudgeVerdict.objects.filter(
            policy_version=policy.version, content_hash__in=set(keys.values())
        )
    }
    asked = _ask_all(config, policy, [c for c in to_judge if keys[c.ref] not in cached], keys)
    new = [
        JudgeVerdict(
            content_hash=key,
            policy_version=policy.version,
            model=config.model,
            prompt_version=version,
            passed=answer.passed,
            scores=answer.scores,
            reason=answer.reason,
            latency_ms=answer.latency_ms,
        )
        for key, answer in asked.items()
        if isinstance(answer, Verdict)
    ]
    JudgeVerdict.objects.bulk_create(new, ignore_conflicts=True)
    for candidate in to_judge:
        key = keys[candidate.ref]
        if key in cached:
            results[candidate.ref] = _result(cached[key], cached=True)
        elif isinstance(asked[key], Verdict):
            verdict = next(v for v in new if v.content_hash == key)
            results[candidate.ref] = _result(verdict, cached=False)
        else:
            held[candidate.ref] = HELD.format(error=asked[key])
    return results, held


def _ask_all(
    config: JudgeConfig, policy: CurationPolicy, candidates: list[Candidate], keys: dict
) -> dict[str, Verdict | str]:
    """content hash -> verdict, or the reason there is none. Each distinct text once."""
    unique = {keys[c.ref]: c for c in candidates}

    def ask(candidate: Candidate) -> Verdict | str:
        try:
            return judge_ask(
                config=config,
                rubric=policy.judge_rubric,
                prompt_messages=candidate.prompt,
                chosen=candidate.chosen,
            )
        except JudgeUnavailable as error:
            return str(error)

    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=min(config.concurrency, len(unique))) as pool:
        answers = pool.map(ask, unique.values())
        return dict(zip(unique, answers, strict=True))


def _result(verdict: JudgeVerdict, *, cached: bool) -> filters.FilterResult:
    return filters.FilterResult(
        filters.LLM_JUDGE,
        verdict.passed,
        min(verdict.scores.values()) if verdict.scores else None,
        JUDGED.format(verdict="pass" if verdict.passed else "fail", reason=verdict.reason),
        {
            "scores": verdict.scores,
            "model": verdict.model,
            "prompt_version": verdict.prompt_version,
            "latency_ms": verdict.latency_ms,
            "cached": cached,
        },
        scorer=verdict.model,
        scorer_version=verdict.prompt_version,
    )
