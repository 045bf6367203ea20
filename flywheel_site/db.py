"""Reading dates Python cannot hold.

PostgreSQL stores timestamps from 4713 BC to 294276 AD and the words
`infinity` / `-infinity`; Python's datetime stops at years 1 and 9999, and
psycopg raises DataError on anything outside. One such value in a row (sent
before the API refused it, written by raw SQL, restored from a dump) made the
row unreadable to Django: the admin list holding it answered 500, so it could
not even be deleted, and every curation chunk holding it failed.

psycopg documents custom loaders for exactly this (its "infinity dates"
example). These loaders fall back to the nearest representable value when the
stock loader refuses, so reading never fails on range; writing is unchanged.
Clamped values stay one day inside Python's range so converting them to any
time zone (templates do) cannot overflow either.
"""

from datetime import date, datetime, timedelta
from struct import unpack

from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.db.backends.signals import connection_created
from psycopg import DataError
from psycopg.pq import Format
from psycopg.types import datetime as pg_datetime

EARLIEST = datetime.min + timedelta(days=1)
LATEST = datetime.max - timedelta(days=1)
EARLIEST_DATE = date.min
LATEST_DATE = date.max


def _side(data, binary: bool) -> int:
    """-1 or +1 when a value the stock loader refused lies before year 1 or
    after 9999; 0 when it was refused for another reason (left to raise)."""
    if binary:
        # Binary dates and timestamps are signed offsets from 2000-01-01.
        return -1 if unpack("!q" if len(data) == 8 else "!i", bytes(data))[0] < 0 else 1
    text = bytes(data)
    if text == b"-infinity" or text.endswith(b"BC"):
        return -1
    # ISO style (Django's): the date comes first, longer than 10 after year 9999.
    if text == b"infinity" or len(text.split()[0]) > 10:
        return 1
    return 0


def _clamped(loader_class, earliest, latest, *, tz_attr: str | None = None):
    binary = loader_class.format == Format.BINARY

    class Clamped(loader_class):
        def load(self, data):
            try:
                return super().load(data)
            except DataError:
                side = _side(data, binary) if data else 0
                if not side:
                    raise
                value = earliest if side < 0 else latest
                if tz_attr:
                    # As the stock loader would: in the connection's zone.
                    return value.replace(tzinfo=getattr(self, tz_attr))
                return value

    Clamped.__name__ = Clamped.__qualname__ = f"Clamped{loader_class.__name__}"
    return Clamped


def register_clamping_loaders(adapters, *, tz) -> None:
    """Register the clamping loaders on a psycopg adapters map (a connection's)."""
    tz_text = _clamped(BaseTzLoader, EARLIEST, LATEST, tz_attr="timezone")
    # Django's own timestamptz loader (it puts values in the connection's zone);
    # Django compares this attribute with the connection's zone before every
    # cursor and installs its plain loader when they differ.
    tz_text.timezone = tz
    adapters.register_loader("timestamptz", tz_text)
    adapters.register_loader(
        "timestamptz",
        _clamped(pg_datetime.TimestamptzBinaryLoader, EARLIEST, LATEST, tz_attr="_timezone"),
    )
    for name, loaders, low, high in (
        (
            "timestamp",
            (pg_datetime.TimestampLoader, pg_datetime.TimestampBinaryLoader),
            EARLIEST,
            LATEST,
        ),
        (
            "date",
            (pg_datetime.DateLoader, pg_datetime.DateBinaryLoader),
            EARLIEST_DATE,
            LATEST_DATE,
        ),
    ):
        for loader in loaders:
            adapters.register_loader(name, _clamped(loader, low, high))


def _on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor != "postgresql":
        return
    register_clamping_loaders(connection.connection.adapters, tz=connection.timezone)


def install() -> None:
    """Clamp on every Django database connection, including ones already open."""
    from django.db import connections

    connection_created.connect(_on_connection_created, dispatch_uid="flywheel_clamping_loaders")
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _on_connection_created(None, conn)
