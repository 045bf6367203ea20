import dataclasses
import hashlib
import ipaddress
import math
import socket
from pathlib import Path

import pytest

from curation import toxicity
from curation.toxicity import (
    BAD_BATCH_SIZE,
    BAD_THRESHOLD,
    MISSING_TOXICITY_SCORE,
    NO_CHECKPOINT,
    TOXICITY_FALLBACK_WARNING,
    TOXICITY_SCORING_FAILED,
    TOXICITY_UNAVAILABLE,
    UNKNOWN_MODEL,
    DetoxifyScorer,
    ProfanityCheckScorer,
    Scorer,
    ToxicityConfig,
    ToxicityScoringError,
    ToxicityUnavailable,
    get_scorer,
    reset_scorer_cache,
    scorer_status,
    toxicity_decision,
)
from tests.support.tiny_detoxify import (
    BENIGN_SENTENCES,
    MAX_POSITIONS,
    TOXIC_SENTENCES,
)

# torch is imported inside the tests that use it: collecting the suite need not import it.

DETOXIFY_LABELS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    reset_scorer_cache()
    yield
    reset_scorer_cache()


def _assert_valid(scores: dict[str, float], labels=DETOXIFY_LABELS) -> None:
    assert set(scores) == set(labels)
    assert all(0.0 <= value <= 1.0 and math.isfinite(value) for value in scores.values())


def _assert_same(left: list[dict[str, float]], right: list[dict[str, float]]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a.keys() == b.keys()
        for label in a:
            assert a[label] == pytest.approx(b[label], abs=1e-5)


# --- Detoxify through its real loading and inference path, on the tiny checkpoint ---


@pytest.mark.slow
def test_it_scores_toxic_text_high_and_benign_text_low(tiny_detoxify):
    scorer = get_scorer(tiny_detoxify)

    results = scorer.score_batch([*TOXIC_SENTENCES, *BENIGN_SENTENCES])

    toxic, benign = results[: len(TOXIC_SENTENCES)], results[len(TOXIC_SENTENCES) :]
    assert all(scores["toxicity"] > 0.9 for scores in toxic)
    assert all(scores["toxicity"] < 0.1 for scores in benign)
    for scores in results:
        _assert_valid(scores)


@pytest.mark.slow
def test_it_names_the_scorer_after_the_model_and_versions_it_by_checkpoint_hash(tiny_detoxify):
    scorer = get_scorer(tiny_detoxify)

    digest = hashlib.sha256(Path(tiny_detoxify.checkpoint).read_bytes()).hexdigest()
    assert isinstance(scorer, DetoxifyScorer)
    assert isinstance(scorer, Scorer)
    assert scorer.name == "detoxify-original"
    assert scorer.version == digest[:12]
    # The checkpoint stores Jigsaw's raw names; detoxify's renaming must come through.
    assert scorer.labels == DETOXIFY_LABELS


@pytest.mark.slow
def test_batch_results_match_one_by_one_results(tiny_detoxify):
    scorer = get_scorer(dataclasses.replace(tiny_detoxify, batch_size=3))
    texts = [*TOXIC_SENTENCES, *BENIGN_SENTENCES, "", "you " * 200, "naïve café — 日本語 🙂"]

    batched = scorer.score_batch(texts)
    single = [scorer.score_batch([text])[0] for text in texts]

    _assert_same(batched, single)


@pytest.mark.slow
def test_it_returns_results_in_input_order_across_batches(tiny_detoxify):
    # Lengths differ and batches are small, so the length sort inside the scorer reorders work.
    scorer = get_scorer(dataclasses.replace(tiny_detoxify, batch_size=2))
    texts = [
        "what a disgusting pathetic loser",
        "thank you for your help",
        "i will kill you",
        "here is the answer to your question",
        "you dumb ugly fool",
        "the weather is nice today",
    ]

    forward = scorer.score_batch(texts)
    backward = scorer.score_batch(texts[::-1])

    _assert_same(forward, backward[::-1])
    assert [scores["toxicity"] > 0.5 for scores in forward] == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "naïve café — 日本語 🙂 Ωmega",
        "\u0000 control \u200b zero width",
    ],
    ids=["empty", "whitespace", "unicode", "control-characters"],
)
def test_it_scores_unusual_text(tiny_detoxify, text):
    [scores] = get_scorer(tiny_detoxify).score_batch([text])

    _assert_valid(scores)


@pytest.mark.slow
def test_it_truncates_text_longer_than_the_model_accepts(tiny_detoxify):
    scorer = get_scorer(tiny_detoxify)
    head = "the weather is nice today " * MAX_POSITIONS
    benign_tail = " thank you for your help" * 500
    toxic_tail = " you are a stupid idiot" * 500

    # Untruncated, these would overflow BERT's position embeddings and raise.
    results = scorer.score_batch([head, head + benign_tail, head + toxic_tail])

    # Everything past the model's limit is cut, so no tail can change the score.
    assert scorer.max_length == MAX_POSITIONS
    _assert_same(results, [results[0]] * 3)
    _assert_valid(results[0])


@pytest.mark.slow
def test_it_returns_nothing_for_no_texts(tiny_detoxify):
    assert get_scorer(tiny_detoxify).score_batch([]) == []


@pytest.mark.slow
def test_it_rejects_a_text_that_is_not_a_string(tiny_detoxify):
    with pytest.raises(TypeError, match="text 1 is NoneType"):
        get_scorer(tiny_detoxify).score_batch(["fine", None])


@pytest.mark.slow
def test_it_does_not_track_gradients_while_scoring(tiny_detoxify, monkeypatch):
    scorer = get_scorer(tiny_detoxify)
    seen = []
    forward = scorer.model.forward

    import torch

    def spy(*args, **kwargs):
        seen.append(torch.is_inference_mode_enabled())
        return forward(*args, **kwargs)

    monkeypatch.setattr(scorer.model, "forward", spy)
    scorer.score_batch(list(BENIGN_SENTENCES))

    assert seen == [True]


# --- load once per process, fail closed, fall back only when allowed ---


@pytest.mark.slow
def test_it_loads_the_model_once_per_config(tiny_detoxify, monkeypatch):
    loads = []
    real_init = DetoxifyScorer.__init__

    def counting_init(self, config):
        loads.append(config)
        real_init(self, config)

    monkeypatch.setattr(DetoxifyScorer, "__init__", counting_init)

    first = get_scorer(tiny_detoxify)
    second = get_scorer(dataclasses.replace(tiny_detoxify))

    assert first is second
    assert len(loads) == 1
    assert scorer_status() == {
        "scorer": "detoxify-original",
        "version": first.version,
        "fallback": False,
        "error": None,
        "warning": None,
    }


def _write_bad_checkpoint(kind: str, directory: Path, good: ToxicityConfig) -> ToxicityConfig:
    if kind == "missing-file":
        return dataclasses.replace(good, checkpoint=str(directory / "absent.ckpt"))
    if kind == "corrupt-file":
        path = directory / "corrupt.ckpt"
        path.write_bytes(b"this is not a torch pickle")
        return dataclasses.replace(good, checkpoint=str(path))
    if kind == "no-config-in-checkpoint":
        path = directory / "bare.ckpt"
        import torch

        torch.save({"state_dict": {}}, path)
        return dataclasses.replace(good, checkpoint=str(path))
    if kind == "missing-config-dir":
        return dataclasses.replace(good, config_dir=str(directory / "absent-dir"))
    raise AssertionError(kind)


BAD_CHECKPOINTS = ["missing-file", "corrupt-file", "no-config-in-checkpoint", "missing-config-dir"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_it_fails_closed_when_the_model_cannot_be_loaded(tiny_detoxify, tmp_path, kind):
    config = _write_bad_checkpoint(kind, tmp_path, tiny_detoxify)

    with pytest.raises(ToxicityUnavailable) as raised:
        get_scorer(config)

    assert str(raised.value).startswith(f"{TOXICITY_UNAVAILABLE}: ")
    status = scorer_status()
    assert status["scorer"] is None
    assert status["fallback"] is False
    assert status["error"] and status["error"] in str(raised.value)
    assert status["warning"] == TOXICITY_UNAVAILABLE


def test_it_retries_a_failed_load_so_a_worker_recovers_without_restart(tmp_path, monkeypatch):
    config = ToxicityConfig(checkpoint=str(tmp_path / "absent.ckpt"))
    attempts = []
    monkeypatch.setattr(toxicity, "DetoxifyScorer", lambda cfg: attempts.append(cfg) or 1 / 0)

    for _ in range(2):
        with pytest.raises(ToxicityUnavailable, match="ZeroDivisionError"):
            get_scorer(config)

    assert len(attempts) == 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_it_falls_back_to_profanity_check_only_when_allowed(tiny_detoxify, tmp_path, kind):
    config = dataclasses.replace(
        _write_bad_checkpoint(kind, tmp_path, tiny_detoxify), allow_fallback=True
    )

    scorer = get_scorer(config)

    assert isinstance(scorer, ProfanityCheckScorer)
    assert scorer is get_scorer(config)
    status = scorer_status(config)
    assert status["scorer"] == "alt-profanity-check"
    assert status["fallback"] is True
    assert status["error"]
    assert status["warning"] == TOXICITY_FALLBACK_WARNING


def test_it_fails_closed_when_the_fallback_cannot_load_either(tmp_path, monkeypatch):
    config = ToxicityConfig(checkpoint=str(tmp_path / "absent.ckpt"), allow_fallback=True)

    def broken():
        raise ImportError("No module named 'profanity_check'")

    monkeypatch.setattr(toxicity, "ProfanityCheckScorer", broken)

    with pytest.raises(ToxicityUnavailable, match="fallback ImportError") as raised:
        get_scorer(config)

    assert str(raised.value).startswith(TOXICITY_UNAVAILABLE)
    assert scorer_status()["scorer"] is None


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to reach a non-loopback host (a name lookup or a connect) is recorded
    and refused, as it would be offline, only at once instead of after a DNS timeout."""
    attempts = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def loopback(host) -> bool:
        if host in (None, "localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def getaddrinfo(host, *args, **kwargs):
        if not loopback(host):
            attempts.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "network refused by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(host):
            attempts.append(host)
            raise OSError("network refused by the test")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.mark.slow  # imports detoxify, and torch with it: seconds on their own
@pytest.mark.parametrize("allow_fallback", [False, True])
def test_without_a_checkpoint_detoxify_is_never_called_and_nothing_is_downloaded(
    no_network, monkeypatch, allow_fallback
):
    import detoxify

    calls = []
    monkeypatch.setattr(detoxify, "Detoxify", lambda *a, **k: calls.append(k) or 1 / 0)
    config = ToxicityConfig(checkpoint="", allow_fallback=allow_fallback)

    if allow_fallback:
        assert isinstance(get_scorer(config), ProfanityCheckScorer)
    else:
        with pytest.raises(ToxicityUnavailable):
            get_scorer(config)

    assert calls == []
    assert no_network == []
    assert NO_CHECKPOINT in scorer_status(config)["error"]


def test_the_no_network_guard_catches_a_download(no_network, tmp_path):
    # The guard itself: Detoxify's real download path, unguarded, would reach GitHub.
    import torch
    from detoxify.detoxify import MODEL_URLS

    with pytest.raises(Exception):  # noqa: B017 (URLError or OSError, by Python version)
        torch.hub.load_state_dict_from_url(MODEL_URLS["original"], model_dir=str(tmp_path))
    assert no_network == ["github.com"]


def test_scorer_status_is_empty_before_any_load():
    assert scorer_status() == {
        "scorer": None,
        "version": None,
        "fallback": False,
        "error": None,
        "warning": None,
    }


# --- the fallback scorer ---


def test_profanity_check_scores_profanity_above_plain_text():
    scorer = ProfanityCheckScorer()

    profane, plain = scorer.score_batch(["you fucking idiot", "thank you for your help"])

    assert scorer.name == "alt-profanity-check"
    assert scorer.version not in ("", "unknown")
    assert scorer.labels == ("toxicity",)
    assert profane["toxicity"] > 0.9 > 0.1 > plain["toxicity"]
    assert scorer.score_batch([]) == []


@pytest.mark.parametrize(
    ("probabilities", "detail"),
    [
        ([float("nan")], "toxicity=nan"),
        ([1.5], "toxicity=1.5"),
        ([], "0 results for 1 texts"),
        ([0.1, 0.2], "2 results for 1 texts"),
    ],
)
def test_it_refuses_unusable_scorer_output(monkeypatch, probabilities, detail):
    scorer = ProfanityCheckScorer()
    monkeypatch.setattr(scorer, "_predict_prob", lambda texts: probabilities)

    with pytest.raises(ToxicityScoringError, match=detail) as raised:
        scorer.score_batch(["some text"])

    assert str(raised.value).startswith(TOXICITY_SCORING_FAILED)
    # Callers that hold on ToxicityUnavailable also hold on a broken result.
    assert isinstance(raised.value, ToxicityUnavailable)


# --- config ---


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "original-small"}, UNKNOWN_MODEL),
        ({"model": ""}, UNKNOWN_MODEL),
        ({"batch_size": 0}, BAD_BATCH_SIZE),
        ({"batch_size": True}, BAD_BATCH_SIZE),
    ],
)
def test_it_rejects_a_bad_config_when_settings_are_read(fields, message):
    with pytest.raises(ValueError, match=message):
        ToxicityConfig(**fields)


@pytest.mark.parametrize("model", ["original", "unbiased", "multilingual"])
def test_it_accepts_the_three_detoxify_models(model):
    assert ToxicityConfig(model=model).model == model


# --- the decision ---


@pytest.mark.parametrize(
    ("scores", "threshold", "per_label", "expected"),
    [
        ({"toxicity": 0.05}, 0.1, None, (True, 0.05, "toxicity 0.0500 <= 0.1")),
        ({"toxicity": 0.1}, 0.1, None, (True, 0.1, "toxicity 0.1000 <= 0.1")),
        ({"toxicity": 0.1000001}, 0.1, None, (False, 0.1000001, "toxicity 0.1000 > 0.1")),
        ({"toxicity": 0.97}, 0.1, None, (False, 0.97, "toxicity 0.9700 > 0.1")),
        ({"toxicity": 0.0}, 0.0, None, (True, 0.0, "toxicity 0.0000 <= 0")),
        ({"toxicity": 1.0}, 1.0, None, (True, 1.0, "toxicity 1.0000 <= 1")),
        # Other labels are not checked unless configured.
        ({"toxicity": 0.05, "threat": 0.9}, 0.1, None, (True, 0.05, "toxicity 0.0500 <= 0.1")),
        (
            {"toxicity": 0.05, "threat": 0.3},
            0.1,
            {"threat": 0.2},
            (False, 0.3, "threat 0.3000 > 0.2"),
        ),
        # A per-label threshold for toxicity overrides the global one.
        ({"toxicity": 0.3}, 0.1, {"toxicity": 0.5}, (True, 0.3, "toxicity 0.3000 <= 0.5")),
        ({"toxicity": 0.6}, 0.1, {"toxicity": 0.5}, (False, 0.6, "toxicity 0.6000 > 0.5")),
        # Several exceed: the largest excess decides and every one is named.
        (
            {"toxicity": 0.2, "insult": 0.95},
            0.1,
            {"insult": 0.5},
            (False, 0.95, "insult 0.9500 > 0.5; toxicity 0.2000 > 0.1"),
        ),
        # The one-label fallback has no insult score: the insult threshold is skipped.
        ({"toxicity": 0.05}, 0.1, {"insult": 0.5}, (True, 0.05, "toxicity 0.0500 <= 0.1")),
    ],
)
def test_toxicity_decision(scores, threshold, per_label, expected):
    assert toxicity_decision(scores, threshold=threshold, per_label=per_label) == expected


@pytest.mark.parametrize(
    ("scores", "threshold", "per_label", "message"),
    [
        ({}, 0.1, None, MISSING_TOXICITY_SCORE),
        ({"toxicity": float("nan")}, 0.1, None, MISSING_TOXICITY_SCORE),
        ({"toxicity": 0.0, "threat": float("nan")}, 0.1, {"threat": 0.5}, MISSING_TOXICITY_SCORE),
        ({"toxicity": 0.0}, 1.5, None, BAD_THRESHOLD),
        ({"toxicity": 0.0}, -0.1, None, BAD_THRESHOLD),
        ({"toxicity": 0.0}, float("nan"), None, BAD_THRESHOLD),
        ({"toxicity": 0.0}, 0.1, {"threat": 2.0}, BAD_THRESHOLD),
    ],
)
def test_toxicity_decision_never_reads_a_missing_score_as_a_pass(
    scores, threshold, per_label, message
):
    with pytest.raises(ValueError, match=message):
        toxicity_decision(scores, threshold=threshold, per_label=per_label)
