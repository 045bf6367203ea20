"""Replays of the same events racing each other through the one-event routes (which insert
a single row without the batch's staging table) store each event once: every other copy
answers `duplicate` with the stored row's id."""

import random
import threading
from collections import defaultdict

import pytest
from django.db import connection

from curation.models import Feedback, Interaction
from tests.support import factories
from tests.support.api import ApiClient

EVENTS = 15
SENDERS = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_single_events_store_no_doubles(ingest_token):
    _, raw = ingest_token
    events = [("/api/v1/interactions", factories.interaction(f"r{i}")) for i in range(EVENTS)] + [
        ("/api/v1/feedback", factories.feedback(f"r{i}", f"rf{i}")) for i in range(EVENTS)
    ]
    answers: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    errors: list[Exception] = []
    barrier = threading.Barrier(SENDERS)

    def send(seed: int) -> None:
        order = events[:]
        random.Random(seed).shuffle(order)
        client = ApiClient(raw)
        try:
            barrier.wait()
            for path, body in order:
                response = client.post(path, body)
                answers[body["event_id"]].append((response.status_code, response.json()))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(seed,)) for seed in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Interaction.objects.count() == EVENTS
    assert Feedback.objects.count() == EVENTS
    for event_id, replies in answers.items():
        assert len(replies) == SENDERS
        statuses = sorted(reply["status"] for _, reply in replies)
        assert statuses == ["created"] + ["duplicate"] * (SENDERS - 1), event_id
        assert len({reply["id"] for _, reply in replies}) == 1, event_id
        assert sorted(code for code, _ in replies) == [200] * (SENDERS - 1) + [201]
