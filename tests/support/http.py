"""Local HTTP servers that stand in for a third party (a webhook receiver, an LLM judge)."""

import socketserver
import threading

# How often serve_forever looks for shutdown(). The standard library's 0.5 s made each stop of
# a server wait up to half a second; the judge and webhook tests each stop one or more.
POLL_S = 0.02


def http_serve(server: socketserver.BaseServer) -> threading.Thread:
    """Serve on a daemon thread until server.shutdown(), which then returns within POLL_S."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True
    )
    thread.start()
    return thread
