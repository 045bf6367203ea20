"""Keyset pagination on the primary key, newest first: the one pager every list uses.

A page is anchored on ids (`before`: the older page, `after`: the newer one), so rows
inserted while someone reads never shift or repeat what they see, and a page deep in
millions of rows costs an index probe, not an OFFSET scan. One row more than the page
is read to know whether an older page exists, so the last page never links to an
empty one."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

PAGE_SIZE = 50


@dataclass(frozen=True)
class KeysetPage:
    rows: list
    # The cursors for the neighbouring pages (`?after=newer`, `?before=older`), or None
    # when there is no such page.
    newer: int | None
    older: int | None

    @classmethod
    def of(
        cls,
        query: QuerySet,
        *,
        before: int | None = None,
        after: int | None = None,
        size: int = PAGE_SIZE,
    ) -> KeysetPage:
        """The page of `query` (any order it had is replaced by the id) older than
        `before`, or newer than `after`, or the newest page."""
        if after:
            # Ascending from the cursor to take the nearest newer rows, then flipped.
            rows = list(query.filter(pk__gt=after).order_by("pk")[: size + 1])
            more_newer = len(rows) > size
            rows = rows[:size][::-1]
            more_older = bool(rows) and query.filter(pk__lt=rows[-1].pk).exists()
        else:
            query_page = query.filter(pk__lt=before) if before else query
            rows = list(query_page.order_by("-pk")[: size + 1])
            more_older = len(rows) > size
            rows = rows[:size]
            more_newer = bool(before) and bool(rows) and query.filter(pk__gt=rows[0].pk).exists()
        return cls(
            rows=rows,
            newer=rows[0].pk if rows and more_newer else None,
            older=rows[-1].pk if rows and more_older else None,
        )
