"""Review queue latency, flat in queue size: claim-next + render and submit.

Run: `make bench`, or `.venv/bin/python bench/review.py` with DATABASE_URL and
REDIS_URL set (`eval "$(scripts/services.sh env)"`). Prints one JSON object on
stdout; progress goes to stderr. Figures and how to read them: bench/RESULTS.md.

Two databases of their own (created and migrated here; never the dev or test
database) hold the two sizes, built with INSERT ... SELECT over generate_series
by cloning template rows the ORM wrote (so every column has the value the app
would give it):
- `flywheel_bench_review_small`: 10,000 candidates, 1,000 items queued, 1,000
  settled items (with their reviews and outcomes);
- `flywheel_bench_review`: 1,000,000 candidates, 100,000 items queued, 100,000
  settled items.
The queues are topped up by what the run will settle, so neither falls below its
size. Queued items have three filter decisions each and pseudo-random
priorities; twenty colleagues hold leases on top-priority items, so the claim
skips them as it would in a busy team.

Server time is measured in-process (Django's test Client: middleware, view,
service, template, no network), the same number of iterations at each size, in
rounds that alternate between the two databases so that load from other
processes on the machine falls on both sizes alike:
- claim + render: POST /review/next/ over HTMX (claims and renders the screen);
- submit: ``review_submit`` alone (the write transaction: lock, insert, settle);
- submit request: POST /review/items/<id>/submit/ over HTMX, as the screen
  sends it (submit, claim the next item, render it).
The target: p95 at the large size <= 1.5 x p95 at the small size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    app_env,
    bench_database_url,
    bench_redis_url,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    percentile,
    pg_connect,
    rounded,
    service_urls,
    stopwatch,
)

DB_NAME = "flywheel_bench_review"
SIZES = {
    "small": {"candidates": 10_000, "queued": 1_000, "reviewed": 1_000},
    "large": {"candidates": 1_000_000, "queued": 100_000, "reviewed": 100_000},
}
COLLEAGUES = 20
TARGET_RATIO = 1.5
HTMX = {"HX-Request": "true"}
RUBRIC = {"accuracy": 4, "helpfulness": 4, "safety": 5}
TEMPLATE_EVENT = "bench-template"

SYSTEM = "You are Acme Cloud's support assistant. Answer briefly and precisely."
QUESTION = "How do I move a project between two workspaces without losing its history?"
RESPONSE = (
    "Open the project, choose Settings, then Transfer. Pick the target workspace and confirm. "
    "History, comments and files move with the project; integrations must be reconnected in "
    "the new workspace, and shared links keep working for thirty days before they expire."
)
EDIT = (
    "Open the project and choose Settings, then Transfer project. Pick the target workspace, "
    "type the project name to confirm and press Transfer. History, comments and files move "
    "with it. Reconnect integrations afterwards; old shared links redirect for thirty days."
)


# --- building the data --------------------------------------------------------


def _columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND column_name <> 'id' "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def _clone(cursor, *, table: str, source: str, where: str, overrides: dict, params=None) -> int:
    """INSERT INTO table SELECT template row t with ``overrides`` FROM ``source``."""
    columns = _columns(cursor, table)
    values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor.execute(
        f"INSERT INTO {table} ({names}) SELECT {values} FROM {source} WHERE {where}",
        params or {},
    )
    return cursor.rowcount


def templates() -> dict:
    """One row of each kind, written by the ORM and the real services."""
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from curation import policies
    from curation.models import Candidate, FilterDecision, Interaction, Source
    from review import services
    from review.models import ReviewItem

    policy = policies.policy_current()
    source, _ = Source.objects.get_or_create(name="bench-review")
    now = timezone.now()
    interaction = Interaction.objects.create(
        source=source,
        event_id=TEMPLATE_EVENT,
        occurred_at=now,
        received_at=now,
        model="acme-chat-2025-11",
        task_type="support",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        response=RESPONSE,
        pii={"email": 1},
        curation_state="done",
    )
    candidate = Candidate.objects.create(
        interaction=interaction,
        kind="preference",
        prompt=interaction.messages,
        chosen=EDIT,
        rejected=RESPONSE,
        feedback_kinds=["edited"],
        task_type="support",
        model=interaction.model,
        status="passed",
        policy=policy,
        exact_key="template",
        char_similarity=0.61,
        word_similarity=0.52,
        toxicity=0.004,
        toxicity_scorer="detoxify-original",
        quality=0.83,
        evaluated_at=now,
    )
    for name, score in (("length", 52.0), ("edit_band", 0.61), ("toxicity", 0.004)):
        FilterDecision.objects.create(
            candidate=candidate,
            policy=policy,
            filter=name,
            passed=True,
            score=score,
            reason=f"{name} within bounds",
            scorer="bench",
            scorer_version="1",
        )
    item = ReviewItem.objects.create(
        candidate=candidate,
        stratum="support|acme-chat-2025-11",
        inclusion_probability=0.1,
        priority=2.0,  # first in line: the template reviewer takes it below
        priority_details={"uncertainty": 0.4, "rarity": 0.6, "new_model": True},
    )
    group, _ = Group.objects.get_or_create(name="annotator")
    users = []
    for name in ["bench", "probe", *(f"colleague-{k:02d}" for k in range(COLLEAGUES))]:
        user, _ = User.objects.get_or_create(username=name)
        user.groups.add(group)
        users.append(user)
    claimed = services.item_claim_next(user=users[0])
    assert claimed.pk == item.pk, "the template item must be the only queued one"
    review = services.review_submit(item=claimed, reviewer=users[0], decision="approve", **RUBRIC)
    return {
        "interaction": interaction.pk,
        "candidate": candidate.pk,
        "item": item.pk,
        "review": review.pk,
        "outcome": claimed.outcome.pk,
        "colleagues": [u.pk for u in users[2:]],
    }


def grow(*, ids: dict, candidates: int, queued: int, reviewed: int) -> dict:
    """Add rows until the database holds ``candidates`` candidates, ``queued``
    queued items and ``reviewed`` settled items. Triggers are off while
    loading (session_replication_role = replica): history and the review
    counter trigger would only slow a bulk load of rows that are final anyway."""
    from django.db import connection, transaction

    timings = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM curation_interaction")
        have, last_interaction = cursor.fetchone()
        add = candidates - have
        cursor.execute("SELECT coalesce(max(id), 0) FROM curation_candidate")
        (last_candidate,) = cursor.fetchone()
        with stopwatch() as took:
            _clone(
                cursor,
                table="curation_interaction",
                source="curation_interaction t, generate_series(1, %(n)s) g",
                where="t.id = %(tmpl)s",
                params={"n": add, "tmpl": ids["interaction"]},
                overrides={
                    "event_id": f"'bench-' || ({last_interaction} + g)",
                    "occurred_at": "t.occurred_at - (g %% 40) * interval '1 day'",
                    "received_at": "t.received_at - (g %% 40) * interval '1 day'",
                    "messages": "jsonb_build_array(t.messages->0, jsonb_build_object("
                    "'role', 'user', 'content', (t.messages->1->>'content') || ' (ticket ' || g "
                    "|| ')'))",
                    "response": "t.response || ' Ref ' || md5(g::text) || '.'",
                    "pii": "CASE WHEN g %% 17 = 0 THEN t.pii ELSE '{}'::jsonb END",
                },
            )
            _clone(
                cursor,
                table="curation_candidate",
                source="curation_interaction i, curation_candidate t",
                where="t.id = %(tmpl)s AND i.id > %(after)s",
                params={"tmpl": ids["candidate"], "after": last_interaction},
                overrides={
                    "interaction_id": "i.id",
                    "prompt": "i.messages",
                    "rejected": "i.response",
                    "chosen": "t.chosen || ' Ref ' || md5(i.id::text) || '.'",
                    "exact_key": "md5(i.event_id)",
                    "char_similarity": "0.3 + (i.id %% 60) / 100.0",
                    "toxicity": "(i.id %% 50) / 1000.0",
                },
            )
        timings["interactions_and_candidates_s"] = took["seconds"]

        cursor.execute("SELECT count(*) FROM review_reviewitem WHERE status = 'queued'")
        (have_queued,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM review_reviewitem WHERE status = 'done'")
        (have_done,) = cursor.fetchone()
        new_queued = max(0, queued - have_queued)
        new_done = max(0, reviewed - have_done)
        with stopwatch() as took:
            # Every second new candidate is sampled; the first new_done of them
            # are settled, the next new_queued wait in the queue.
            _clone(
                cursor,
                table="review_reviewitem",
                source=(
                    "(SELECT c.id, row_number() OVER (ORDER BY c.id) AS k FROM curation_candidate c"
                    " WHERE c.id > %(after)s AND c.id %% 2 = 0 ORDER BY c.id"
                    " LIMIT %(limit)s) s, review_reviewitem t"
                ),
                where="t.id = %(tmpl)s",
                params={
                    "after": last_candidate,
                    "limit": new_done + new_queued,
                    "tmpl": ids["item"],
                },
                overrides={
                    "candidate_id": "s.id",
                    "priority": "((s.id * 2654435761) %% 1000003) / 1000003.0",
                    "status": f"CASE WHEN s.k <= {new_done} THEN 'done' ELSE 'queued' END",
                    "reviews_done": f"CASE WHEN s.k <= {new_done} THEN 1 ELSE 0 END",
                    "lease_holder_id": "NULL",
                    "lease_expires_at": "NULL",
                    "lease_started_at": "NULL",
                    "created_at": "now() - (s.id %% 30) * interval '1 day'",
                },
            )
            colleagues = "ARRAY[" + ",".join(str(pk) for pk in ids["colleagues"]) + "]"
            # Settled items that have no review yet: the ones just added.
            settled = (
                "t.id = %(tmpl)s AND ri.status = 'done' AND NOT EXISTS "
                "(SELECT 1 FROM review_review x WHERE x.item_id = ri.id)"
            )
            _clone(
                cursor,
                table="review_review",
                source="review_reviewitem ri, review_review t",
                where=settled,
                params={"tmpl": ids["review"]},
                overrides={
                    "item_id": "ri.id",
                    "reviewer_id": f"({colleagues})[1 + ri.id %% {COLLEAGUES}]",
                    "decision": "CASE WHEN ri.id %% 7 = 0 THEN 'reject' ELSE 'approve' END",
                    "reject_reason": "CASE WHEN ri.id %% 7 = 0 THEN 'Wrong or misleading' "
                    "ELSE '' END",
                    "submitted_at": "ri.created_at + interval '2 hours'",
                    "started_at": "ri.created_at + interval '2 hours' - (ri.id %% 90) * "
                    "interval '1 second'",
                },
            )
            _clone(
                cursor,
                table="review_reviewoutcome",
                source="review_reviewitem ri, review_reviewoutcome t",
                where=(
                    "t.id = %(tmpl)s AND ri.status = 'done' AND NOT EXISTS "
                    "(SELECT 1 FROM review_reviewoutcome x WHERE x.item_id = ri.id)"
                ),
                params={"tmpl": ids["outcome"]},
                overrides={"item_id": "ri.id", "decided_at": "ri.created_at + interval '2 hours'"},
            )
            _clone(
                cursor,
                table="curation_filterdecision",
                source="review_reviewitem ri, curation_filterdecision t",
                where=(
                    "t.candidate_id = %(tmpl)s AND ri.status = 'queued' AND ri.candidate_id > "
                    "%(after)s"
                ),
                params={"tmpl": ids["candidate"], "after": last_candidate},
                overrides={"candidate_id": "ri.candidate_id"},
            )
        timings["items_reviews_decisions_s"] = took["seconds"]
    return timings


def vacuum(url: str) -> float:
    with stopwatch() as took, pg_connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    return took["seconds"]


def counts() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM curation_candidate),"
            " (SELECT count(*) FROM review_reviewitem WHERE status = 'queued'),"
            " (SELECT count(*) FROM review_reviewitem WHERE status = 'done'),"
            " (SELECT count(*) FROM review_review)"
        )
        candidates, queued, done, reviews = cursor.fetchone()
    return {"candidates": candidates, "queued": queued, "settled": done, "reviews": reviews}


def reset(url: str) -> None:
    """Empty every table the benchmark fills (the schema stays)."""
    with pg_connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND ("
                "tablename LIKE 'review\\_%' OR tablename LIKE 'curation\\_%' "
                "OR tablename LIKE 'training\\_%' OR tablename LIKE 'pghistory\\_%')"
                " AND tablename NOT IN ('curation_curationpolicy', 'review_guideline')"
            )
        ]
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


# --- measuring ----------------------------------------------------------------


def colleagues_claim(ids: dict) -> None:
    """Release every lease, then let the colleagues take the top of the queue."""
    from django.contrib.auth.models import User

    from review import services
    from review.models import ReviewItem

    ReviewItem.objects.filter(lease_holder__isnull=False).update(
        lease_holder=None, lease_expires_at=None, lease_started_at=None
    )
    for user in User.objects.filter(pk__in=ids["colleagues"]):
        assert services.item_claim_next(user=user) is not None


def claim_plan() -> dict:
    """EXPLAIN of the claim query as the service sends it for the bench user
    (the claim itself is rolled back)."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from review import services

    user = User.objects.get(username="bench")
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        services.item_claim_next(user=user)
        transaction.set_rollback(True)
    sql = next(q["sql"] for q in captured.captured_queries if "SKIP LOCKED" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return {"uses_queue_index": "reviewitem_queue_idx" in plan, "plan": plan}


def use(name: str) -> None:
    """Point the default connection at another bench database."""
    from django.db import connections

    conn = connections["default"]
    if conn.settings_dict["NAME"] != name:
        conn.close()
        conn.settings_dict["NAME"] = name


def _pk(response) -> int:
    assert response.status_code == 200, response.status_code
    return int(response["HX-Push-Url"].rstrip("/").rsplit("/", 1)[1])


def _fields(i: int) -> dict:
    if i % 10 == 0:
        return {"decision": "reject", "reject_reason": "Wrong or misleading", **RUBRIC}
    if i % 10 == 1:
        return {"decision": "approve_edit", "final_text": f"{EDIT} Checked ({i}).", **RUBRIC}
    return {"decision": "approve", **RUBRIC}


class Session:
    """The bench annotator on one database: a logged-in client and the samples."""

    def __init__(self, name: str):
        from django.contrib.auth.models import User
        from django.test import Client

        use(name)
        self.name = name
        self.user = User.objects.get(username="bench")
        self.client = Client()
        self.client.force_login(self.user)
        self.samples = {"claim_render_ms": [], "submit_ms": [], "submit_request_ms": []}
        self.count = 0

    def run(self, n: int, *, record: bool) -> None:
        """n claim + submit pairs, then n submit requests (each claims the next)."""
        from review import services
        from review.models import ReviewItem

        use(self.name)
        for _ in range(n):
            self.count += 1
            start = time.perf_counter()
            response = self.client.post("/review/next/", headers=HTMX)
            claimed = time.perf_counter()
            fields = _fields(self.count)
            decision = fields.pop("decision")
            item = ReviewItem(pk=_pk(response))
            before = time.perf_counter()
            services.review_submit(item=item, reviewer=self.user, decision=decision, **fields)
            after = time.perf_counter()
            if record:
                self.samples["claim_render_ms"].append(1000 * (claimed - start))
                self.samples["submit_ms"].append(1000 * (after - before))
        pk = _pk(self.client.post("/review/next/", headers=HTMX))
        for _ in range(n):
            self.count += 1
            start = time.perf_counter()
            response = self.client.post(
                f"/review/items/{pk}/submit/", _fields(self.count), headers=HTMX
            )
            took = time.perf_counter() - start
            pk = _pk(response)
            if record:
                self.samples["submit_request_ms"].append(1000 * took)
        # Leave no lease behind: the next round starts with a claim, as a person would.
        services.item_skip(item=ReviewItem(pk=pk), user=self.user)


def _summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": rounded(percentile(values, 50), 2),
        "p95": rounded(percentile(values, 95), 2),
        "max": rounded(max(values), 2),
    }


# --- main ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="per measure and size")
    parser.add_argument("--rounds", type=int, default=6, help="alternations between the sizes")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--large-candidates", type=int, default=SIZES["large"]["candidates"])
    args = parser.parse_args()
    per_round = max(1, args.iterations // args.rounds)
    iterations = per_round * args.rounds
    # Each claim + submit and each submit request settles one item (and each
    # round skips one); the queue is topped up so it never falls below its size.
    consumed = 2 * (iterations + args.warmup) + args.rounds + 2
    sizes = {name: dict(size) for name, size in SIZES.items()}
    scale = args.large_candidates / SIZES["large"]["candidates"]
    sizes["large"] = {k: int(v * scale) for k, v in SIZES["large"].items()}

    base_db, base_redis = service_urls()
    names = {"small": f"{DB_NAME}_small", "large": DB_NAME}
    urls = {size: bench_database_url(base_url=base_db, name=n) for size, n in names.items()}
    began = time.perf_counter()
    envs = {}
    for size, url in urls.items():
        envs[size] = app_env(
            database_url=url,
            redis_url=bench_redis_url(base_url=base_redis),
            FLYWHEEL_DB_CONN_MAX_AGE="600",
        )
        ensure_database(url=url)
        log(f"migrating {names[size]}")
        migrate(env=envs[size])
        reset(url)
    os.environ.update(envs["large"])
    import django

    django.setup()

    build, plans, rows = {}, {}, {}
    for size in ("small", "large"):
        use(names[size])
        ids = templates()
        target = {**sizes[size], "queued": sizes[size]["queued"] + consumed}
        log(f"{size}: building {target} in {names[size]}")
        build[size] = grow(ids=ids, **target)
        build[size]["vacuum_s"] = vacuum(urls[size])
        build[size] = {k: rounded(v, 1) for k, v in build[size].items()}
        colleagues_claim(ids)
        plans[size] = claim_plan()
        log(f"{size}: claim plan\n{plans[size]['plan']}")
        rows[size] = {"start": counts()}

    sessions = {size: Session(names[size]) for size in ("small", "large")}
    for size, session in sessions.items():
        log(f"{size}: warm-up")
        session.run(args.warmup, record=False)
    for k in range(args.rounds):
        order = ("small", "large") if k % 2 == 0 else ("large", "small")
        for size in order:
            log(f"round {k + 1}/{args.rounds}: {size}")
            sessions[size].run(per_round, record=True)

    results = {}
    for size, session in sessions.items():
        use(names[size])
        rows[size]["end"] = counts()
        results[size] = {
            "database": names[size],
            "rows": rows[size],
            "claim_uses_queue_index": plans[size]["uses_queue_index"],
            **{key: _summary(values) for key, values in session.samples.items()},
        }
        log(f"{size}: {results[size]}")
    ratios = {
        key: rounded(results["large"][key]["p95"] / results["small"][key]["p95"], 2)
        for key in ("claim_render_ms", "submit_ms", "submit_request_ms")
    }
    emit(
        {
            "benchmark": "review",
            "machine": machine(),
            "iterations": iterations,
            "rounds": args.rounds,
            "sizes": sizes,
            "build_s": build,
            "results": results,
            "p95_ratio_large_to_small": ratios,
            "target_ratio": TARGET_RATIO,
            "meets_target": all(r <= TARGET_RATIO for r in ratios.values()),
            "seconds": rounded(time.perf_counter() - began, 1),
        }
    )


if __name__ == "__main__":
    main()
