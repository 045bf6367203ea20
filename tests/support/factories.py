"""Plain payload builders for ingest tests and benchmarks, and rows tests build without
the service that would make them (a training run that nothing trained)."""

import itertools

from training.models import TrainingRun

_counter = itertools.count(1)


def interaction(event_id: str | None = None, **overrides) -> dict:
    n = next(_counter)
    payload = {
        "event_id": event_id or f"int-{n}",
        "occurred_at": "2026-11-01T12:00:00Z",
        "model": "support-bot-v2",
        "task_type": "support",
        "messages": [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": f"How do I reset my password? (ticket {n})"},
        ],
        "response": "Open Settings, choose Security, then Reset password and follow the link.",
        "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48},
        "latency_ms": 412,
        "user_id": "customer-42",
        "session_id": "sess-1",
        "segment": "pro",
        "metadata": {"locale": "en-US"},
    }
    payload.update(overrides)
    return payload


def feedback(interaction_event_id: str, event_id: str | None = None, **overrides) -> dict:
    n = next(_counter)
    payload = {
        "event_id": event_id or f"fb-{n}",
        "interaction_event_id": interaction_event_id,
        "kind": "thumbs_up",
        "occurred_at": "2026-11-01T12:01:00Z",
    }
    payload.update(overrides)
    return payload


def edit(**overrides) -> dict:
    n = next(_counter)
    payload = {
        "prompt": f"Summarise our refund policy for a customer (case {n}).",
        "original_llm_output": "Refunds are possible within 30 days if you have the receipt.",
        "final_user_edit": "Refunds are possible within 30 days of purchase with a receipt or "
        "order number.",
        "model": "support-bot-v2",
        "task_type": "summarisation",
    }
    payload.update(overrides)
    return payload


def training_run_fields(dataset_version, **overrides) -> dict:
    """A built-in DPO run of `dataset_version`, started by hand and running; `overrides`
    set the rest (status, timings, progress, config)."""
    return {
        "dataset_version": dataset_version,
        "trigger": "manual",
        "trainer": "builtin",
        "method": "dpo",
        "export_format": "dpo_conversational",
        "status": "running",
        **overrides,
    }


def training_run(dataset_version, **overrides) -> TrainingRun:
    return TrainingRun.objects.create(**training_run_fields(dataset_version, **overrides))
