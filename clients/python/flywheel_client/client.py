"""The client: a bounded queue, one sender thread per process, and a route cache.

What the app's threads do is take a lock, append to a deque and return: no I/O, no
waiting, no exception. Everything that can be slow (HTTP, retries, backoff) happens on
the sender thread, and every wait the app can ask for (flush, close) has a deadline.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import json
import logging
import multiprocessing.util
import os
import random
import threading
import time
import urllib.parse
import weakref
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from flywheel_client import transport

logger = logging.getLogger("flywheel_client")

# The server's batch endpoint takes at most 1,000 items and 5 MiB by default.
MAX_BATCH_ITEMS = 1000
_RETRYABLE = {429, 500, 502, 503, 504}
_KINDS = {"interaction": "interactions", "feedback": "feedback", "edit": "edits"}

# Every live client, so that a forked child can reset each one (weak: a client the app
# dropped is not kept alive by this).
_clients: weakref.WeakSet[Flywheel] = weakref.WeakSet()


@dataclass
class Stats:
    queued: int  # waiting in the queue now
    sent: int  # answered created or duplicate by the server
    dropped: int  # refused because the queue was full
    rejected: int  # refused by the server (4xx other than 429, or a rejected batch item)
    failed: int  # given up after retrying for max_retry_s, or abandoned at close
    retries: int  # HTTP attempts that were retried


class Flywheel:
    """Send interactions, feedback and edits to a Flywheel server in the background.

    Every `log_*` call returns the event id at once; nothing it does waits on the network.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_queue: int = 10_000,
        batch_size: int = 100,
        batch_max_bytes: int = 1024 * 1024,
        flush_interval: float = 1.0,
        request_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_retry_s: float = 600.0,
        route_ttl: float = 30.0,
        route_timeout: float = 1.0,
        route_failure_ttl: float = 5.0,
        base_model: str = "base",
        exit_timeout: float = 5.0,
        drop_log_interval: float = 60.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_ITEMS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_ITEMS}")
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.url = url.rstrip("/")
        self.token = token
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.batch_max_bytes = batch_max_bytes
        self.flush_interval = flush_interval
        self.request_timeout = request_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_s = max_retry_s
        self.route_ttl = route_ttl
        self.route_timeout = route_timeout
        self.route_failure_ttl = route_failure_ttl
        self.base_model = base_model
        self.exit_timeout = exit_timeout
        self.drop_log_interval = drop_log_interval
        self._counts = {"sent": 0, "dropped": 0, "rejected": 0, "failed": 0, "retries": 0}
        self._routes: collections.OrderedDict[str, tuple[float, str]] = collections.OrderedDict()
        self._route_lock = threading.Lock()
        self._closed = False
        self._reset_process_state()
        _clients.add(self)
        atexit.register(self._close_at_exit)

    def _reset_process_state(self, *, forked: bool = False) -> None:
        # Everything that belongs to one process: a forked child starts with its own.
        self._pid = os.getpid()
        self._forked = forked
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: collections.deque[tuple[str, dict]] = collections.deque()
        self._in_flight = 0
        self._urgent = 0  # flush() callers waiting: send without waiting for a full batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped_unlogged = 0
        self._drop_logged_at = float("-inf")

    # --- the app's calls ----------------------------------------------------------

    def log_interaction(
        self, *, messages: list[dict], response: str, event_id: str | None = None, **fields: Any
    ) -> str:
        """Queue one interaction (fields as POST /api/v1/interactions). Returns its event id."""
        event_id = event_id or transport.new_id()
        self._enqueue(
            "interaction",
            {**fields, "event_id": event_id, "messages": messages, "response": response},
        )
        return event_id

    def log_feedback(
        self,
        *,
        interaction_event_id: str,
        kind: str,
        value: Any = None,
        final_text: str | None = None,
        event_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue one feedback event on the interaction `interaction_event_id`."""
        event_id = event_id or transport.new_id()
        item = {
            **fields,
            "event_id": event_id,
            "interaction_event_id": interaction_event_id,
            "kind": kind,
        }
        if value is not None:
            item["value"] = value
        if final_text is not None:
            item["final_text"] = final_text
        self._enqueue("feedback", item)
        return event_id

    def log_edit(
        self,
        prompt: str,
        original_llm_output: str,
        final_user_edit: str,
        *,
        event_id: str | None = None,
        **fields: Any,
    ) -> str:
        """Queue a prompt, the model's answer and the user's edit of it (one event)."""
        event_id = event_id or transport.new_id()
        self._enqueue(
            "edit",
            {
                **fields,
                "event_id": event_id,
                "prompt": prompt,
                "original_llm_output": original_llm_output,
                "final_user_edit": final_user_edit,
            },
        )
        return event_id

    def _enqueue(self, kind: str, item: dict) -> None:
        if os.getpid() != self._pid:
            _after_fork_in_child()  # a fork the hook did not see (it always should)
        with self._lock:
            if self._closed or len(self._queue) >= self.max_queue:
                dropped = self._count_drop()
            else:
                dropped = None
                self._queue.append((kind, item))
                if len(self._queue) >= self.batch_size:
                    self._cond.notify_all()
                if self._thread is None:
                    self._start_thread()
        if dropped:
            # Logged outside the lock: a log handler that itself logs events here must
            # not deadlock.
            logger.warning(
                "flywheel: queue full (%d events) or client closed: dropped %d events",
                self.max_queue,
                dropped,
            )

    def _count_drop(self) -> int | None:
        """Count one dropped event (the lock held). Returns how many to log now: one log
        line per interval, not one per event, so a down server does not also flood the
        app's logs."""
        self._counts["dropped"] += 1
        self._dropped_unlogged += 1
        now = time.monotonic()
        if now - self._drop_logged_at < self.drop_log_interval:
            return None
        dropped, self._dropped_unlogged = self._dropped_unlogged, 0
        self._drop_logged_at = now
        return dropped

    def stats(self) -> Stats:
        with self._lock:
            return Stats(queued=len(self._queue), **self._counts)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is sent or given up, at most `timeout`
        seconds. Returns whether the queue emptied in time."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            if not self._queue and not self._in_flight:
                return True
            if self._thread is None and not self._closed:
                self._start_thread()
            self._urgent += 1
            self._cond.notify_all()
            try:
                while self._queue or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._urgent -= 1

    def close(self, timeout: float = 5.0) -> bool:
        """Flush for at most `timeout` seconds, then stop the sender. Whatever is still
        queued then is counted as failed. Returns whether everything was sent."""
        deadline = time.monotonic() + max(0.0, timeout)
        done = self.flush(timeout)
        with self._lock:
            self._closed = True
            self._counts["failed"] += len(self._queue)
            self._queue.clear()
            thread = self._thread
            self._stop.set()
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            # The sender may be inside an HTTP call; it is a daemon, so it is not waited
            # for past the deadline.
            thread.join(max(0.0, deadline - time.monotonic()))
        return done

    def _close_at_exit(self) -> None:
        if not self._closed and os.getpid() == self._pid:
            self.close(self.exit_timeout)

    async def aflush(self, timeout: float = 5.0) -> bool:
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 5.0) -> bool:
        return await asyncio.to_thread(self.close, timeout)

    async def aroute(self, key: str) -> str:
        return await asyncio.to_thread(self.route, key)

    def __enter__(self) -> Flywheel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(self.exit_timeout)

    # --- routing --------------------------------------------------------------------

    def route(self, key: str) -> str:
        """The serving name for `key` (a user or session id), cached for `route_ttl`
        seconds. On any failure: `base_model`, with a log line; it never raises."""
        try:
            now = time.monotonic()
            with self._route_lock:
                hit = self._routes.get(key)
                if hit is not None and hit[0] > now:
                    return hit[1]
            query = urllib.parse.urlencode({"key": key})
            status, _, body = transport.request(
                self.url,
                self.token,
                "GET",
                f"/api/v1/route?{query}",
                None,
                timeout=self.route_timeout,
            )
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            answer = json.loads(body)
            model = answer["model"]
            if not isinstance(model, str) or not model:
                raise RuntimeError("no model in the answer")
            ttl = min(self.route_ttl, float(answer.get("ttl_s") or self.route_ttl))
            with self._route_lock:
                self._routes[key] = (now + ttl, model)
                self._routes.move_to_end(key)
                while len(self._routes) > 10_000:
                    self._routes.popitem(last=False)
            return model
        except Exception as error:  # the caller's request must never fail here
            logger.warning(
                "flywheel: route(%r) failed (%s): serving %s", key, error, self.base_model
            )
            # The fallback is cached too, briefly: while the server is down, each request
            # of the app must not wait route_timeout again.
            with self._route_lock:
                self._routes[key] = (time.monotonic() + self.route_failure_ttl, self.base_model)
            return self.base_model

    # --- the sender thread -----------------------------------------------------------

    def _start_thread(self) -> None:
        # Called with the lock held.
        if self._forked:
            # A multiprocessing child leaves with os._exit, which skips atexit; its
            # finalizers run all the same. Registered here, not at the fork: the child's
            # bootstrap empties the finalizer registry after the fork hooks have run.
            multiprocessing.util.Finalize(self, self._close_at_exit, exitpriority=100)
            self._forked = False
        self._thread = threading.Thread(target=self._run, name="flywheel-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._send(batch)
            except Exception:  # the thread must outlive any bug in a batch
                logger.exception("flywheel: a batch of %d events could not be sent", len(batch))
                self._add("failed", len(batch))
            finally:
                with self._lock:
                    self._in_flight -= len(batch)
                    self._cond.notify_all()

    def _take(self) -> list[tuple[str, dict]] | None:
        with self._lock:
            while not self._queue:
                if self._stop.is_set():
                    return None
                self._cond.wait()
            # Wait for a full batch, at most flush_interval, unless someone is flushing.
            deadline = time.monotonic() + self.flush_interval
            while len(self._queue) < self.batch_size and not self._urgent:
                if self._stop.is_set():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            count = min(self.batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(count)]
            self._in_flight += count
            return batch

    def _add(self, name: str, count: int) -> None:
        with self._lock:
            self._counts[name] += count

    def _send(self, batch: list[tuple[str, dict]]) -> None:
        encoded = []
        for kind, item in batch:
            try:
                encoded.append((kind, transport.encode(item)))
            except (TypeError, ValueError) as error:
                # One event the app filled with something JSON cannot hold (an object,
                # NaN) is refused alone; the rest of its batch goes out.
                logger.error("flywheel: a %s event cannot be sent as JSON: %s", kind, error)
                self._add("rejected", 1)
        for chunk in transport.chunks(encoded, self.batch_max_bytes):
            self._send_chunk(chunk)

    def _send_chunk(self, chunk: list[tuple[str, bytes]]) -> None:
        parts: dict[str, list[bytes]] = {}
        for kind, encoded in chunk:
            parts.setdefault(_KINDS[kind], []).append(encoded)
        body = (
            b"{"
            + b",".join(
                json.dumps(key).encode() + b":[" + b",".join(items) + b"]"
                for key, items in parts.items()
            )
            + b"}"
        )
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                status, headers, answer = transport.request(
                    self.url,
                    self.token,
                    "POST",
                    "/api/v1/batch",
                    body,
                    timeout=self.request_timeout,
                )
                error = f"HTTP {status}"
            except (OSError, HTTPException) as exc:
                status, headers, answer, error = None, {}, b"", f"connection error: {exc}"
            if status == 200:
                self._count_results(answer, len(chunk))
                return
            if status is not None and status not in _RETRYABLE:
                logger.error(
                    "flywheel: %d events refused by the server (%s): %s",
                    len(chunk),
                    error,
                    answer[:500].decode(errors="replace"),
                )
                self._add("rejected", len(chunk))
                return
            delay = self._backoff(attempt, headers.get("retry-after"))
            if self._stop.is_set() or time.monotonic() - started + delay > self.max_retry_s:
                logger.error(
                    "flywheel: gave up on %d events after %d attempts (%s)",
                    len(chunk),
                    attempt + 1,
                    error,
                )
                self._add("failed", len(chunk))
                return
            attempt += 1
            self._add("retries", 1)
            logger.info("flywheel: %s; retry %d in %.2f s", error, attempt, delay)
            if self._stop.wait(delay):  # close() gave up waiting: stop retrying
                self._add("failed", len(chunk))
                return

    def _count_results(self, answer: bytes, count: int) -> None:
        try:
            results = json.loads(answer)["results"]
        except (ValueError, KeyError, TypeError):
            self._add("sent", count)
            return
        refused = [r for r in results if r.get("status") == "rejected"]
        if refused:
            logger.error(
                "flywheel: %d events rejected by the server, first: %s",
                len(refused),
                refused[0].get("errors"),
            )
        self._add("rejected", len(refused))
        self._add("sent", len(results) - len(refused))

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        # Full jitter (a random share of the exponential step), so that many clients
        # returning after one outage do not arrive in step; Retry-After is a floor.
        step = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay = random.uniform(0, step)
        floor = transport.retry_after_seconds(retry_after)
        if floor is not None:
            delay = max(delay, min(floor, self.backoff_max))
        return delay


def _after_fork_in_child() -> None:
    # The parent's sender thread does not exist here and its lock may have been held at
    # the fork: each client gets fresh state and starts its own sender on its next event.
    # What the parent had queued is the parent's to send.
    for client in list(_clients):
        if client._pid == os.getpid():
            continue
        client._reset_process_state(forked=True)


os.register_at_fork(after_in_child=_after_fork_in_child)
