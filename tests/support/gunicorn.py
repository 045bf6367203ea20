"""The app under gunicorn as `make run` serves it (scripts/gunicorn.conf.py), on a socket
the test binds (port 0) and hands over, so the port is known and free."""

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings


@contextmanager
def gunicorn_served(*, workers: int = 1, env: dict[str, str] | None = None) -> Iterator[str]:
    """Yields the server's base URL; `env` is added to this process's environment."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = subprocess.Popen(
        [
            f"{sys.prefix}/bin/gunicorn",
            "flywheel_site.wsgi:application",
            "--config",
            "scripts/gunicorn.conf.py",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--access-logfile",
            "/dev/null",
        ],
        pass_fds=[listener.fileno()],
        env={**os.environ, **(env or {})},
        cwd=settings.BASE_DIR,
    )
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        listener.close()
