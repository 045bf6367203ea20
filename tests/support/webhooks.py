"""A real webhook receiver: an HTTP server on 127.0.0.1 that verifies every request's
signature with the `standardwebhooks` package."""

from __future__ import annotations

import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

from tests.support.http import http_serve

# The receiver listens on loopback, which the SSRF guard refuses unless a test allows it.
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


class Receiver:
    """A threading HTTP server on 127.0.0.1, port 0. It answers the queued status codes in
    order (then 200), and verifies each request's signature as it arrives."""

    def __init__(self):
        self.statuses: list[int] = []
        self.requests: list[dict] = []
        self.secret: str | None = None
        self.hold: threading.Event | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except Exception as error:  # recorded for the test to assert on
                    payload, verified = repr(error), False
                receiver.requests.append(
                    {"headers": headers, "body": body, "payload": payload, "verified": verified}
                )
                if receiver.hold is not None:  # a receiver that hangs until released
                    receiver.hold.wait(timeout=120)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                answer = json.dumps({"got": len(receiver.requests)}).encode()
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = http_serve(self.server)

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hooks/flywheel?x=1"

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
