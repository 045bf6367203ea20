"""A real local HTTP server standing in for Flywheel's batch and route endpoints, so
that each failure (429, 503, a hang, a refused connection) can be played on cue. The
client against the real app is tested in the project's tests (tests/test_client_stack.py)."""

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class FakeFlywheel:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"path", "time", "body"}
        self.script: list[tuple[int, dict, dict | None]] = []  # answers to play first
        self.delay = 0.0
        self.route_model = "m-canary"
        self.route_calls = 0

    def received(self, kind: str = "interactions") -> list[dict]:
        with self.lock:
            return [
                item
                for r in self.requests
                if r["status"] == 200
                for item in (r["body"] or {}).get(kind, [])
            ]

    def answer(self, handler):
        time.sleep(self.delay)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if handler.path.startswith("/api/v1/route"):
            with self.lock:
                self.route_calls += 1
            return (
                200,
                {},
                {"model": self.route_model, "arm": "canary", "experiment": 1, "ttl_s": 60},
            )
        body = json.loads(raw) if raw else None
        with self.lock:
            status, headers, answer = self.script.pop(0) if self.script else (200, {}, None)
            self.requests.append(
                {"path": handler.path, "time": time.monotonic(), "body": body, "status": status}
            )
        if answer is None and status == 200:
            items = [i for key in ("interactions", "feedback", "edits") for i in body.get(key, [])]
            answer = {
                "created": len(items),
                "duplicate": 0,
                "rejected": 0,
                "results": [{"status": "created"} for _ in items],
            }
        return status, headers, answer or {"error": "x", "message": "scripted", "errors": []}


@pytest.fixture
def server():
    fake = FakeFlywheel()

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            status, headers, answer = fake.answer(self)
            data = json.dumps(answer).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            # The client may have given up on this request (its timeout), as it should.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        do_GET = do_POST = _any

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield fake
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    """An address where nothing listens: every connection is refused at once."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{hole.getsockname()[1]}"
