"""Verifying the audit chain, and the one write path into audit rows: redaction.

`audit_verify` is what `manage.py verify_audit` and the scheduled job run: it walks the
chain from its first link, recomputes every hash, checks every event row against the
content hash its link holds, looks for event rows with no link (inserted with the
trigger bypassed), verifies the dataset manifests' chain, records the result as an
`AuditCheck`, and fires `audit.chain_broken` when a break is new."""

import hashlib
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction

from flywheel_site.audit import sql
from flywheel_site.audit.models import AuditCheck
from training.datasets.export import datasets_verify
from training.webhooks import services as webhooks

CHUNK = 5000
PROBLEMS_MAX = 50


class AuditError(Exception):
    """A refused audit operation (a redaction of a row that is not on the chain)."""


@dataclass
class ChainReport:
    links: int = 0
    redactions: int = 0
    problems: list[str] = field(default_factory=list)
    head_seq: int = 0
    head_hash: bytes = b""

    def problem(self, text: str) -> None:
        if len(self.problems) < PROBLEMS_MAX:
            self.problems.append(text)


def link_hash(prev: bytes, content_hash: bytes, table: str, pk: int) -> bytes:
    """The hash `flywheel_audit_append` computes in the database."""
    return hashlib.sha256(prev + content_hash + f"{table}:{pk}".encode()).digest()


# Stays whole: one ordered walk of the chain in one snapshot; each check reads the state the
# previous link left, and splitting it would pass that state around for no reader's gain.
def audit_chain_verify(*, anchor: tuple[int, str] | None = None) -> ChainReport:
    """Walk the chain in order; the report's first problem is the first broken link.
    `anchor` is (seq, hex hash) of a link verified before: it must still be there."""
    report = ChainReport()
    with transaction.atomic(), connection.cursor() as cursor:
        # Links this transaction still owes (deferred to commit) are appended first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for missing in sql.triggers_missing(cursor):
            report.problem(f"trigger missing or disabled on {missing}")
        tables = sql.audited_tables(cursor)
        cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_auditlink")
        head_seq = cursor.fetchone()[0]
        cursor.execute("SELECT table_name, row_pk FROM audit_auditredaction")
        redacted = set(cursor.fetchall())
        prev, expected, last = sql.ZERO_HASH, 1, 0
        while True:
            cursor.execute(
                "SELECT seq, table_name, row_pk, content_hash, prev_hash, hash FROM "
                "audit_auditlink WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                [last, head_seq, CHUNK],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            current = _content_hashes(cursor, tables, rows[0][0], rows[-1][0])
            for seq, table, pk, content_hash, stored_prev, stored_hash in rows:
                report.links += 1
                name = f"link #{seq} ({table} #{pk})"
                if seq != expected:
                    report.problem(f"links #{expected}..#{seq - 1} are missing (deleted)")
                if bytes(stored_prev) != prev:
                    report.problem(f"{name}: prev_hash does not match the link before it")
                if link_hash(prev, bytes(content_hash), table, pk) != bytes(stored_hash):
                    report.problem(f"{name}: hash does not match its contents (link edited)")
                if table not in tables:
                    report.problem(f"{name}: the table is not an audited table")
                elif seq not in current:
                    report.problem(f"{name}: the event row was deleted")
                elif current[seq] != bytes(content_hash):
                    if (table, pk) in redacted:
                        report.redactions += 1
                    else:
                        report.problem(f"{name}: the event row was edited")
                prev, expected, last = bytes(stored_hash), seq + 1, seq
        report.head_seq, report.head_hash = last, prev
        if anchor and anchor[0]:
            seq, digest = anchor
            cursor.execute("SELECT hash FROM audit_auditlink WHERE seq = %s", [seq])
            row = cursor.fetchone()
            if row is None or bytes(row[0]).hex() != digest:
                report.problem(
                    f"link #{seq}, the head an earlier check verified, is gone or differs "
                    "(the chain was cut or rewritten)"
                )
        for table, pk in tables.items():
            cursor.execute(
                sql.query(
                    "SELECT count(*), min({pk}) FROM {table} t WHERE NOT EXISTS (SELECT 1 "
                    "FROM audit_auditlink l WHERE l.table_name = %s AND l.row_pk = t.{pk})",
                    table=table,
                    pk=pk,
                ),
                [table],
            )
            count, first = cursor.fetchone()
            if count:
                report.problem(
                    f"{table} #{first}: {count} row(s) on no link (inserted bypassing the trigger)"
                )
    return report


def _content_hashes(cursor, tables: dict[str, str], low: int, high: int) -> dict[int, bytes]:
    """seq -> the content hash of the row as it is now, over the columns it was chained with."""
    cursor.execute(
        "SELECT DISTINCT table_name FROM audit_auditlink WHERE seq BETWEEN %s AND %s",
        [low, high],
    )
    out = {}
    for (table,) in cursor.fetchall():
        if table not in tables:
            continue
        cursor.execute(
            sql.query(
                "SELECT l.seq, flywheel_audit_content_hash(to_jsonb(t), l.columns) "
                "FROM audit_auditlink l JOIN {table} t ON t.{pk} = l.row_pk "
                "WHERE l.table_name = %s AND l.seq BETWEEN %s AND %s",
                table=table,
                pk=tables[table],
            ),
            [table, low, high],
        )
        out.update((seq, bytes(digest)) for seq, digest in cursor.fetchall())
    return out


def audit_verify() -> AuditCheck:
    """Verify the audit chain and the dataset manifests' chain together; record the result."""
    previous = AuditCheck.objects.order_by("-ran_at", "-pk").first()
    verified = AuditCheck.objects.filter(ok=True).order_by("-ran_at", "-pk").first()
    anchor = (verified.head_seq, verified.head_hash) if verified else None
    report = audit_chain_verify(anchor=anchor)
    versions, dataset_problems = datasets_verify()
    problems = report.problems + dataset_problems[: max(0, PROBLEMS_MAX - len(report.problems))]
    with transaction.atomic():
        check = AuditCheck.objects.create(
            ok=not (report.problems or dataset_problems),
            links=report.links,
            redactions=report.redactions,
            versions=versions,
            problems=problems,
            head_seq=report.head_seq,
            head_hash=report.head_hash.hex() if report.head_seq else "",
        )
        # One event per new break, not one per scheduled run while it stays broken.
        if not check.ok and (previous is None or previous.problems[:1] != problems[:1]):
            webhooks.event_emit(
                type=webhooks.AUDIT_CHAIN_BROKEN,
                data={
                    "check_id": check.pk,
                    "first_problem": problems[0],
                    "problems": len(problems),
                    "url": webhooks.link("home"),
                },
            )
    return check


def audit_event_redact(*, table: str, pk: int, columns: list[str], reason: str) -> None:
    """Blank `columns` of one event row for a lawful erasure. The link keeps the content
    hash, so the chain verifies; the redaction is recorded (and chained) with `reason`,
    which must hold no personal data."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # An event written earlier in this transaction (a delete's copy of the row)
            # is linked now, so it is on the chain before it is redacted.
            cursor.execute(f"SET CONSTRAINTS {sql.LINK_TRIGGER} IMMEDIATE")
            cursor.execute(
                "SELECT flywheel_audit_redact(%s, %s, %s, %s)", [table, pk, columns, reason]
            )
    except DatabaseError as exc:
        raise AuditError(f"cannot redact {table} #{pk}: {exc.__cause__ or exc}") from exc
