"""What each pytest-xdist worker owns, so parallel workers never share state: a Redis
database and a slice of ports. pytest-django already gives each worker its own test
database (test_<name>_gw0, test_<name>_gw1, ...)."""

import os
import random
import socket
from urllib.parse import urlsplit, urlunsplit

# Redis has databases 0-15; 0 stays for `make run`, serial runs keep the database they are given.
REDIS_DATABASES = 16
# Server ports tests bind are below the kernel's ephemeral range (32768+), where no client
# socket can hold them; each worker draws from its own slice.
PORT_BASE = 28000
PORT_SLICE = 400


def worker_number() -> int | None:
    """gw0 -> 0, gw1 -> 1, ...; None outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def worker_redis_url(url: str) -> str:
    """The same Redis server, in this worker's own database (gw0 -> 1, gw1 -> 2, ...)."""
    number = worker_number()
    if number is None:
        return url
    database = number + 1
    if database >= REDIS_DATABASES:
        raise RuntimeError(f"{number + 1} xdist workers: Redis has databases 1-15 for them")
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def free_port() -> int:
    """A port free now, in this worker's slice below the ephemeral range."""
    start = PORT_BASE + (worker_number() or 0) * PORT_SLICE
    for _ in range(200):
        port = random.randint(start, start + PORT_SLICE - 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {start}-{start + PORT_SLICE - 1}")
