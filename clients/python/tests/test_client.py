"""The client's promises, one test per failure users of peer SDKs report: shutdown hanging
forever, flush with no timeout, memory growing while the server is down, events lost at
exit, events lost or crossed under concurrency; and the retry rules."""

import asyncio
import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from datetime import datetime

import pytest
from flywheel_client import Flywheel

MESSAGES = [{"role": "user", "content": "Hi"}]


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_it_sends_in_batches_bounded_in_size(server):
    fw = Flywheel(server.url, "t", batch_size=100, flush_interval=5)
    ids = [fw.log_interaction(messages=MESSAGES, response=f"r{i}") for i in range(250)]
    assert fw.flush(timeout=5)
    sizes = [len(r["body"]["interactions"]) for r in server.requests]
    assert sorted(sizes, reverse=True) == [100, 100, 50]
    assert sorted(i["event_id"] for i in server.received()) == sorted(ids)
    assert fw.stats().sent == 250
    fw.close(1)


def test_a_partial_batch_goes_out_after_flush_interval_without_a_flush(server):
    fw = Flywheel(server.url, "t", batch_size=100, flush_interval=0.2)
    fw.log_interaction(messages=MESSAGES, response="r")
    assert wait_until(lambda: len(server.received()) == 1, timeout=3)
    fw.close(1)


def test_a_batch_is_split_under_the_byte_bound(server):
    fw = Flywheel(server.url, "t", batch_size=10, batch_max_bytes=5000, flush_interval=5)
    for _ in range(10):
        fw.log_interaction(messages=MESSAGES, response="x" * 1000)
    assert fw.flush(timeout=5)
    assert [len(r["body"]["interactions"]) for r in server.requests] == [4, 4, 2]
    fw.close(1)


def test_kinds_go_to_their_lists_with_client_made_ids(server):
    fw = Flywheel(server.url, "t")
    i = fw.log_interaction(messages=MESSAGES, response="r", model="m1")
    f = fw.log_feedback(interaction_event_id=i, kind="rating", value=4)
    e = fw.log_edit("prompt", "draft", "final", model="m1")
    assert fw.flush(timeout=5)
    assert server.received("interactions")[0]["model"] == "m1"
    assert server.received("feedback") == [
        {"event_id": f, "interaction_event_id": i, "kind": "rating", "value": 4}
    ]
    assert server.received("edits")[0]["event_id"] == e
    assert len({i, f, e}) == 3
    fw.close(1)


# --- retries ---------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after_with_the_same_event_ids(server):
    server.script = [(429, {"Retry-After": "1"}, None)]
    fw = Flywheel(server.url, "t", backoff_base=0.01)
    event_id = fw.log_interaction(messages=MESSAGES, response="r")
    assert fw.flush(timeout=5)
    first, second = server.requests
    assert second["time"] - first["time"] >= 0.95
    assert [i["event_id"] for i in first["body"]["interactions"]] == [event_id]
    assert first["body"] == second["body"]
    assert fw.stats().retries == 1
    assert fw.stats().sent == 1
    fw.close(1)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_retried_with_backoff(server, status):
    server.script = [(status, {}, None), (status, {}, None)]
    fw = Flywheel(server.url, "t", backoff_base=0.05)
    fw.log_interaction(messages=MESSAGES, response="r")
    assert fw.flush(timeout=5)
    assert [r["status"] for r in server.requests] == [status, status, 200]
    assert fw.stats().retries == 2


def test_a_connection_error_is_retried_until_the_server_is_back(server, dead_url):
    fw = Flywheel(dead_url, "t", backoff_base=0.05, backoff_max=0.2)
    fw.log_interaction(messages=MESSAGES, response="r")
    assert not fw.flush(timeout=0.5)
    assert fw.stats().retries >= 1
    fw.url = server.url  # the server comes back (at another address, as a test can do it)
    assert fw.flush(timeout=5)
    assert len(server.received()) == 1
    fw.close(1)


def test_backoff_grows_exponentially_with_jitter():
    fw = Flywheel("http://127.0.0.1:9", "t", backoff_base=1, backoff_max=30)
    steps = [[fw._backoff(attempt, None) for _ in range(200)] for attempt in range(5)]
    for attempt, delays in enumerate(steps):
        assert all(0 <= d <= 2**attempt for d in delays)
        assert len({round(d, 6) for d in delays}) > 100  # jittered, not fixed
    assert max(steps[4]) > 2 * max(steps[0])
    assert fw._backoff(0, "7") >= 7
    fw.close(0)


def test_another_4xx_is_not_retried_and_is_reported(server, caplog):
    server.script = [(422, {}, {"error": "invalid", "message": "bad", "errors": []})]
    fw = Flywheel(server.url, "t", backoff_base=0.01)
    fw.log_interaction(messages=MESSAGES, response="r")
    with caplog.at_level(logging.ERROR, logger="flywheel_client"):
        assert fw.flush(timeout=5)
    assert len(server.requests) == 1
    assert fw.stats().rejected == 1
    assert fw.stats().retries == 0
    assert "refused by the server (HTTP 422)" in caplog.text


def test_items_the_server_rejects_in_a_batch_are_counted_not_retried(server, caplog):
    answer = {"created": 1, "duplicate": 0, "rejected": 1, "results": [
        {"status": "created"}, {"status": "rejected", "errors": [{"field": "x"}]}]}  # fmt: skip
    server.script = [(200, {}, answer)]
    fw = Flywheel(server.url, "t")
    fw.log_interaction(messages=MESSAGES, response="r")
    fw.log_interaction(messages=[], response="r")
    with caplog.at_level(logging.ERROR, logger="flywheel_client"):
        assert fw.flush(timeout=5)
    assert (fw.stats().sent, fw.stats().rejected) == (1, 1)
    assert len(server.requests) == 1
    assert "1 events rejected" in caplog.text


def test_an_event_json_cannot_hold_is_rejected_alone(server, caplog):
    fw = Flywheel(server.url, "t")
    fw.log_interaction(messages=MESSAGES, response="ok", metadata={"when": datetime(2026, 1, 2)})
    fw.log_interaction(messages=MESSAGES, response="nan", metadata={"x": float("nan")})
    fw.log_interaction(messages=MESSAGES, response="obj", metadata={"x": object()})
    with caplog.at_level(logging.ERROR, logger="flywheel_client"):
        assert fw.flush(timeout=5)
    [sent] = server.received()
    assert sent["metadata"] == {"when": "2026-01-02T00:00:00+00:00"}
    assert (fw.stats().sent, fw.stats().rejected) == (1, 2)
    assert caplog.text.count("cannot be sent as JSON") == 2
    fw.close(1)


# --- bounded: memory, time ----------------------------------------------------


def test_a_full_queue_drops_and_counts_without_blocking_and_logs_once(dead_url, caplog):
    fw = Flywheel(dead_url, "t", max_queue=10, backoff_base=5)
    with caplog.at_level(logging.WARNING, logger="flywheel_client"):
        took = []
        for _ in range(1000):
            started = time.perf_counter()
            fw.log_interaction(messages=MESSAGES, response="r")
            took.append(time.perf_counter() - started)
    stats = fw.stats()
    assert stats.queued + stats.dropped == 1000
    assert stats.queued <= 10
    assert stats.dropped >= 990 - fw.batch_size
    # A percentile: on a shared 2-core machine any single call can lose the CPU.
    assert sorted(took)[989] < 0.001
    assert caplog.text.count("dropped") == 1
    fw.close(0.1)


def test_memory_stays_under_the_queue_bound_while_the_server_is_down(dead_url):
    fw = Flywheel(dead_url, "t", max_queue=1000, backoff_base=5)
    payload = "x" * 1000
    tracemalloc.start()
    try:
        for _ in range(1000):
            fw.log_interaction(messages=MESSAGES, response=payload)
        settled, _ = tracemalloc.get_traced_memory()
        for _ in range(20_000):
            fw.log_interaction(messages=MESSAGES, response=payload)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 20,000 more events of 1 KB would be 20 MB; the queue holds 1,000 at most.
    assert after - settled < 200_000
    assert peak < 3_000_000
    assert fw.stats().dropped >= 19_000
    fw.close(0.1)


def test_flush_returns_within_its_timeout_while_the_server_hangs(server):
    server.delay = 30
    fw = Flywheel(server.url, "t", request_timeout=60)
    fw.log_interaction(messages=MESSAGES, response="r")
    started = time.monotonic()
    assert fw.flush(timeout=0.5) is False
    assert time.monotonic() - started < 0.7


def test_close_returns_within_its_timeout_while_the_server_hangs(server):
    # langfuse-python #1799: shutdown() blocked forever on a queue join.
    server.delay = 30
    fw = Flywheel(server.url, "t", request_timeout=60)
    for _ in range(50):
        fw.log_interaction(messages=MESSAGES, response="r")
    started = time.monotonic()
    assert fw.close(timeout=1) is False
    assert time.monotonic() - started < 1.3
    assert fw.stats().queued == 0


def test_close_returns_within_its_timeout_while_retrying_an_unreachable_server(dead_url):
    fw = Flywheel(dead_url, "t", backoff_base=0.05)
    for _ in range(500):
        fw.log_interaction(messages=MESSAGES, response="r")
    time.sleep(0.3)
    started = time.monotonic()
    assert fw.close(timeout=2) is False
    assert time.monotonic() - started < 2.5
    # The batch the sender held is counted once it wakes from its backoff.
    assert wait_until(lambda: fw.stats().failed == 500, timeout=2)
    fw.log_interaction(messages=MESSAGES, response="after close")
    assert fw.stats().dropped == 1


# --- exit, fork, threads, asyncio --------------------------------------------------


def _run_script(code: str, url: str):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code).format(url=url)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_events_queued_at_exit_are_sent(server):
    done = _run_script(
        """
        from flywheel_client import Flywheel
        fw = Flywheel({url!r}, "t", flush_interval=60)
        for i in range(30):
            fw.log_interaction(messages=[{{"role": "user", "content": "q"}}], response=str(i))
        """,
        server.url,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(int(i["response"]) for i in server.received()) == list(range(30))


def test_exit_while_the_server_is_down_takes_no_longer_than_exit_timeout(dead_url):
    started = time.monotonic()
    done = _run_script(
        """
        from flywheel_client import Flywheel
        fw = Flywheel({url!r}, "t", exit_timeout=1, backoff_base=0.05)
        fw.log_interaction(messages=[{{"role": "user", "content": "q"}}], response="r")
        """,
        dead_url,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10


def _child(fw):
    # Runs in a forked child: the client made in the parent, used here.
    for i in range(20):
        fw.log_interaction(messages=MESSAGES, response=f"child{i}")


def test_a_forked_child_restarts_the_sender_and_sends_its_events_at_exit(server):
    fw = Flywheel(server.url, "t", flush_interval=60)
    fw.log_interaction(messages=MESSAGES, response="parent0")
    assert fw.flush(timeout=5)  # the parent's sender thread runs
    for i in range(1, 4):
        fw.log_interaction(messages=MESSAGES, response=f"parent{i}")
    process = multiprocessing.get_context("fork").Process(target=_child, args=(fw,))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert fw.flush(timeout=5)
    responses = sorted(i["response"] for i in server.received())
    # The child sent its own 20 (no flush call: at its exit) and none of the parent's.
    assert responses == sorted([f"child{i}" for i in range(20)] + [f"parent{i}" for i in range(4)])
    fw.close(1)


def test_a_raw_fork_child_gets_a_working_client(server):
    fw = Flywheel(server.url, "t")
    fw.log_interaction(messages=MESSAGES, response="before")
    assert fw.flush(timeout=5)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fw.log_interaction(messages=MESSAGES, response="in child")
            code = 0 if fw.flush(timeout=5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(i["response"] for i in server.received()) == ["before", "in child"]
    fw.close(1)


def test_eight_threads_lose_nothing_and_feedback_keeps_its_interaction(server):
    # Langfuse #12974: parent spans lost under concurrency. Here each thread's feedback
    # must name the interaction that thread logged, and every event must arrive once.
    fw = Flywheel(server.url, "t", batch_size=50, flush_interval=0.05)

    def work(n):
        for i in range(200):
            iid = fw.log_interaction(messages=MESSAGES, response=f"{n}-{i}")
            fw.log_feedback(interaction_event_id=iid, kind="thumbs_up", metadata={"r": f"{n}-{i}"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fw.flush(timeout=10)
    interactions = {i["event_id"]: i["response"] for i in server.received("interactions")}
    feedback = server.received("feedback")
    assert len(interactions) == len(feedback) == 1600
    assert all(interactions[f["interaction_event_id"]] == f["metadata"]["r"] for f in feedback)
    fw.close(1)


def test_usable_from_asyncio(server):
    fw = Flywheel(server.url, "t")

    async def main():
        async def one(i):
            fw.log_interaction(messages=MESSAGES, response=str(i))

        await asyncio.gather(*(one(i) for i in range(100)))
        assert await fw.aflush(timeout=5)
        assert await fw.aroute("user-1") == "m-canary"
        return await fw.aclose(timeout=1)

    assert asyncio.run(main()) is True
    assert len(server.received()) == 100


# --- route ---------------------------------------------------------------------------


def test_route_is_cached_for_route_ttl(server):
    fw = Flywheel(server.url, "t", route_ttl=0.3)
    assert fw.route("u1") == "m-canary"
    assert fw.route("u1") == "m-canary"
    assert server.route_calls == 1
    time.sleep(0.35)
    server.route_model = "m-next"
    assert fw.route("u1") == "m-next"
    assert server.route_calls == 2


def test_route_answers_the_base_model_and_logs_on_failure(dead_url, caplog):
    fw = Flywheel(dead_url, "t", base_model="served-base")
    with caplog.at_level(logging.WARNING, logger="flywheel_client"):
        started = time.monotonic()
        assert fw.route("u1") == "served-base"
    assert time.monotonic() - started < 1.5
    assert "route('u1') failed" in caplog.text
    assert "serving served-base" in caplog.text


def test_route_never_raises_on_a_hung_or_broken_server(server):
    fw = Flywheel(server.url, "t", base_model="b", route_timeout=0.2, route_failure_ttl=60)
    server.delay = 2
    started = time.monotonic()
    assert fw.route("u1") == "b"
    assert time.monotonic() - started < 0.6
    # The fallback is cached: the next request of the app does not wait again.
    started = time.monotonic()
    assert fw.route("u1") == "b"
    assert time.monotonic() - started < 0.05
    server.delay = 0
    server.route_model = None  # an answer without a model
    assert fw.route("u2") == "b"
