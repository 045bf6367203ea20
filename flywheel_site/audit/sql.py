"""The database side of the audit chain: functions and triggers.

- `flywheel_audit_link` (a constraint trigger, deferred to commit, on every event table):
  appends the row's link. Deferred so the chain's lock row is held only for the instant
  between the commit's triggers and the commit itself, not for the whole transaction.
- `flywheel_audit_guard` (BEFORE UPDATE OR DELETE): audit rows are append-only; the one
  exception is `flywheel_audit_redact`, which blanks columns of one event row and chains
  a redaction record. Content hashes are chained, not content, so a redacted row still
  verifies (as a redaction).

Event tables are found in the catalogue (the columns every django-pghistory event table
has), so the migration, the post_migrate hook and `verify_audit` agree on the set."""

from django.db import connections
from psycopg import sql as pgsql

ZERO_HASH = b"\x00" * 32
LINK_TRIGGER = "flywheel_audit_link"
GUARD_TRIGGER = "flywheel_audit_guard"
LINK_TABLE = "audit_auditlink"
REDACTION_TABLE = "audit_auditredaction"
HEAD_TABLE = "audit_auditchainhead"
# Append-only but not chained: the links themselves, and the checks (their head anchors).
GUARDED = (LINK_TABLE, "audit_auditcheck")

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION flywheel_audit_append(tbl text, pk bigint, content jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  chash bytea := sha256(convert_to(content::text, 'UTF8'));
  cols text[] := ARRAY(SELECT jsonb_object_keys(content) ORDER BY 1);
  last_seq bigint;
  prev bytea;
  next bytea;
BEGIN
  -- The lock row serialises appenders: FOR UPDATE waits for a concurrent committer, and
  -- the next statement (a new snapshot) sees the link it left. The row is locked, never
  -- updated: updating one row once per event made a large transaction quadratic.
  PERFORM 1 FROM audit_auditchainhead WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO audit_auditchainhead (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
    PERFORM 1 FROM audit_auditchainhead WHERE id = 1 FOR UPDATE;
  END IF;
  SELECT seq, hash INTO last_seq, prev FROM audit_auditlink ORDER BY seq DESC LIMIT 1;
  IF NOT FOUND THEN
    last_seq := 0;
    prev := decode(repeat('00', 32), 'hex');
  END IF;
  next := sha256(prev || chash || convert_to(tbl || ':' || pk::text, 'UTF8'));
  INSERT INTO audit_auditlink
    (seq, table_name, row_pk, columns, content_hash, prev_hash, hash, created_at)
    VALUES (last_seq + 1, tbl, pk, cols, chash, prev, next, now());
END $$;

CREATE OR REPLACE FUNCTION flywheel_audit_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  content jsonb := to_jsonb(NEW);
BEGIN
  PERFORM flywheel_audit_append(TG_TABLE_NAME, (content ->> TG_ARGV[0])::bigint, content);
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION flywheel_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND TG_ARGV[0] = 'event'
     AND current_setting('flywheel.audit_redaction', true) = 'on' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

-- The content hash the chain holds, recomputed from a row over the columns it had.
CREATE OR REPLACE FUNCTION flywheel_audit_content_hash(content jsonb, cols text[])
RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT sha256(convert_to(COALESCE(
    (SELECT jsonb_object_agg(key, value) FROM jsonb_each(content) WHERE key = ANY(cols)),
    '{}'::jsonb)::text, 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION flywheel_audit_redact(tbl text, pk bigint, cols text[], why text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  col text;
  typ text;
  nullable boolean;
  sets text[] := '{}';
  changed integer;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM audit_auditlink WHERE table_name = tbl AND row_pk = pk) THEN
    RAISE EXCEPTION 'no audit link for %:%', tbl, pk USING ERRCODE = 'no_data_found';
  END IF;
  FOREACH col IN ARRAY cols LOOP
    SELECT data_type, is_nullable = 'YES' INTO typ, nullable FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = tbl AND column_name = col;
    IF NOT FOUND OR col LIKE 'pgh\_%' OR col = 'id' THEN
      RAISE EXCEPTION 'column % of % cannot be redacted', col, tbl
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    sets := sets || format('%I = %s', col, CASE
      WHEN nullable THEN 'NULL'
      WHEN typ IN ('text', 'character varying') THEN quote_literal('')
      WHEN typ = 'jsonb' THEN quote_literal('null') || '::jsonb'
      ELSE 'NULL' END);
  END LOOP;
  PERFORM set_config('flywheel.audit_redaction', 'on', true);
  EXECUTE format('UPDATE %I SET %s WHERE pgh_id = $1', tbl, array_to_string(sets, ', ')) USING pk;
  GET DIAGNOSTICS changed = ROW_COUNT;
  PERFORM set_config('flywheel.audit_redaction', 'off', true);
  IF changed <> 1 THEN
    RAISE EXCEPTION 'no event row %:%', tbl, pk USING ERRCODE = 'no_data_found';
  END IF;
  INSERT INTO audit_auditredaction (table_name, row_pk, columns, reason, created_at)
    VALUES (tbl, pk, cols, why, now());
END $$;
"""

EVENT_TABLES = """
SELECT c.table_name FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
  AND c.column_name IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')
GROUP BY c.table_name HAVING count(*) = 4 ORDER BY c.table_name
"""

TRIGGERED = """
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname IN (%s, %s) AND t.tgenabled <> 'D'
  AND c.relnamespace = current_schema()::regnamespace
"""


def query(template: str, **identifiers: str) -> str:
    """`template` with {name} placeholders filled by quoted identifiers (table and
    column names come from the catalogue, never from a request)."""
    parts = {k: pgsql.Identifier(v) for k, v in identifiers.items()}
    return pgsql.SQL(template).format(**parts).as_string(connections["default"].connection)


def event_tables(cursor) -> list[str]:
    cursor.execute(EVENT_TABLES)
    return [row[0] for row in cursor.fetchall()]


def audited_tables(cursor) -> dict[str, str]:
    """Every table on the chain and its primary key column."""
    tables = dict.fromkeys(event_tables(cursor), "pgh_id")
    tables[REDACTION_TABLE] = "id"
    return tables


def triggers_missing(cursor) -> list[str]:
    """Audited tables whose link or guard trigger is absent or disabled, as "table: trigger"."""
    cursor.execute(TRIGGERED, [LINK_TRIGGER, GUARD_TRIGGER])
    present = set(cursor.fetchall())
    missing = []
    for table in audited_tables(cursor):
        for trigger in (LINK_TRIGGER, GUARD_TRIGGER):
            if (table, trigger) not in present:
                missing.append(f"{table}: {trigger}")
    for table in GUARDED:
        if (table, GUARD_TRIGGER) not in present:
            missing.append(f"{table}: {GUARD_TRIGGER}")
    return missing


def chain_triggers_install(cursor) -> list[str]:
    """Create the functions and, on every audited table without them, the triggers; the
    rows such a table already holds are chained first (in pgh_id order), so a new table
    starts verified. Returns the tables that got triggers. Idempotent."""
    cursor.execute(FUNCTIONS)
    cursor.execute(TRIGGERED, [LINK_TRIGGER, GUARD_TRIGGER])
    present = set(cursor.fetchall())
    installed = []
    for table, pk in audited_tables(cursor).items():
        if (table, LINK_TRIGGER) not in present:
            _seal_existing(cursor, table, pk)
            cursor.execute(
                f'CREATE CONSTRAINT TRIGGER {LINK_TRIGGER} AFTER INSERT ON "{table}" '
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"EXECUTE FUNCTION flywheel_audit_link('{pk}')"
            )
            installed.append(table)
        if (table, GUARD_TRIGGER) not in present:
            _guard_create(cursor, table, "event" if pk == "pgh_id" else "record")
    for table in GUARDED:
        if (table, GUARD_TRIGGER) not in present:
            _guard_create(cursor, table, "record")
    return installed


def _guard_create(cursor, table: str, kind: str) -> None:
    cursor.execute(f'DROP TRIGGER IF EXISTS {GUARD_TRIGGER} ON "{table}"')
    cursor.execute(
        f'CREATE TRIGGER {GUARD_TRIGGER} BEFORE UPDATE OR DELETE ON "{table}" '
        f"FOR EACH ROW EXECUTE FUNCTION flywheel_audit_guard('{kind}')"
    )


def _seal_existing(cursor, table: str, pk: str) -> None:
    cursor.execute(f'DROP TRIGGER IF EXISTS {LINK_TRIGGER} ON "{table}"')
    cursor.execute(
        query(
            "SELECT flywheel_audit_append(%s, ({pk})::bigint, to_jsonb(t)) "
            "FROM (SELECT * FROM {table} t ORDER BY {pk}) t "
            "WHERE NOT EXISTS (SELECT 1 FROM audit_auditlink l "
            "WHERE l.table_name = %s AND l.row_pk = t.{pk})",
            table=table,
            pk=pk,
        ),
        [table, table],
    )


def chain_triggers_install_signal(sender, using="default", **kwargs) -> None:
    if sender.label != "audit":
        return  # once per migrate, after every app's tables exist
    with connections[using].cursor() as cursor:
        chain_triggers_install(cursor)
