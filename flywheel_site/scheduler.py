"""RQ's scheduler (it moves retries and delayed jobs onto their queues) as a
process of its own: `python -m flywheel_site.scheduler`.

`rqworker --with-scheduler` forks it as a child of a worker; a `kill -9` of
that worker orphans the child, which keeps the scheduler lock. Here the
scheduler runs in the foreground, so the supervisor that restarts it also owns
it. On a Redis error it exits and the supervisor starts it again.

A scheduler killed with -9 leaves its lock for up to a minute (its TTL), and
RQ retries a lock it could not take only every two minutes. At start this
process therefore frees locks whose holder, by RQ's own record of it, ran on
this host under a pid that no longer exists.
"""

import logging
import os
import socket

import django

LOCK_QUEUES = ("curation", "default", "training")

log = logging.getLogger("flywheel.scheduler")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_locks(connection, queue_names) -> list[str]:
    """Free scheduler locks whose holder was a process on this host that is gone."""
    from rq.scheduler import RQScheduler
    from rq.scripts import release_lock

    freed = []
    host = socket.gethostname()
    for name in queue_names:
        key = RQScheduler.get_locking_key(name)
        holder = connection.get(key)
        if holder is None:
            continue
        holder = holder.decode()
        record = connection.hgetall(f"rq:scheduler:{holder}")
        if not record:
            continue
        pid = int(record.get(b"pid", b"0") or 0)
        ours = record.get(b"hostname", b"").decode() == host
        if ours and pid and not _alive(pid) and release_lock(connection, key, holder):
            freed.append(name)
    if freed:
        log.warning("freed scheduler locks of a dead scheduler for %s", ", ".join(freed))
    return freed


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
    django.setup()
    import django_rq
    from rq.scheduler import RQScheduler, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    connection = django_rq.get_connection("default")
    release_dead_locks(connection, LOCK_QUEUES)
    scheduler = RQScheduler(list(LOCK_QUEUES), connection=connection)
    run(scheduler)


if __name__ == "__main__":
    main()
