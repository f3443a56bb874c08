"""The store's tables, written once for every backend, and the migrations between versions.

DDL is written with type words in braces that each dialect fills in: ``{id}`` an
auto-numbered primary key, ``{ts}`` an instant (text in SQLite, ``timestamptz`` in
PostgreSQL), ``{day}`` a calendar date, ``{geom}`` a geometry in EPSG:4326 (WKB in
SQLite, a PostGIS ``geometry`` with a GiST index in PostgreSQL), ``{real}`` a float.

Migration 1 is the schema the first release wrote (a SQLite file without a
``schema_version`` is at version 1). Every later change is one more migration, run in
order inside one transaction when a store is opened, so a store written by an earlier
release is upgraded in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SCHEMA_VERSION = 5

_V1 = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS divisions (
        code TEXT PRIMARY KEY,
        level TEXT NOT NULL CHECK (level IN ('district', 'street', 'community')),
        name TEXT NOT NULL,
        parent_code TEXT,
        synthetic INTEGER NOT NULL,
        geom {geom} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS grid_versions (
        id {id},
        valid_from {day} NOT NULL,
        source TEXT NOT NULL,
        created_at {ts} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cells (
        version_id INTEGER NOT NULL REFERENCES grid_versions(id),
        code TEXT NOT NULL,
        community_code TEXT NOT NULL,
        street_code TEXT NOT NULL,
        district_code TEXT NOT NULL,
        area_m2 {real} NOT NULL,
        geom {geom} NOT NULL,
        PRIMARY KEY (version_id, code))""",
    """CREATE TABLE IF NOT EXISTS cases (
        id {id},
        event_class TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('reported', 'filed', 'dispatched', 'handled', 'closed', 'rejected')),
        lon {real} NOT NULL,
        lat {real} NOT NULL,
        description TEXT NOT NULL,
        reporter TEXT NOT NULL,
        reported_at {ts} NOT NULL,
        cell_code TEXT,
        street_code TEXT,
        component_code TEXT,
        photo_ref TEXT,
        department TEXT,
        time_limit_hours {real} NOT NULL,
        closed_at {ts},
        updated_at {ts} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cases_state ON cases (state, event_class)",
    "CREATE INDEX IF NOT EXISTS cases_cell ON cases (cell_code)",
    "CREATE INDEX IF NOT EXISTS cases_reported ON cases (reported_at)",
    """CREATE TABLE IF NOT EXISTS case_events (
        case_id INTEGER NOT NULL REFERENCES cases(id),
        seq INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        at {ts} NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        department TEXT,
        PRIMARY KEY (case_id, seq))""",
    """CREATE TABLE IF NOT EXISTS case_followups (
        id {id},
        case_id INTEGER NOT NULL REFERENCES cases(id),
        at {ts} NOT NULL,
        responded INTEGER NOT NULL,
        resolved INTEGER NOT NULL,
        satisfaction TEXT NOT NULL CHECK (satisfaction IN ('满意', '基本满意', '不满意')),
        note TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        case_id INTEGER NOT NULL REFERENCES cases(id),
        created_at {ts} NOT NULL,
        PRIMARY KEY (principal, key))""",
    """CREATE TABLE IF NOT EXISTS chiefs (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, title TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS alleys (
        name TEXT PRIMARY KEY, synthetic INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
        geom {geom} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS chief_assignments (
        chief_id TEXT NOT NULL REFERENCES chiefs(id),
        alley TEXT NOT NULL REFERENCES alleys(name),
        valid_from {day} NOT NULL,
        PRIMARY KEY (alley, valid_from))""",
    """CREATE TABLE IF NOT EXISTS alley_cells (
        version_id INTEGER NOT NULL REFERENCES grid_versions(id),
        alley TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        PRIMARY KEY (version_id, alley, cell_code))""",
    """CREATE TABLE IF NOT EXISTS alley_cells_done (
        version_id INTEGER PRIMARY KEY REFERENCES grid_versions(id))""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN
            ('supervisor', 'dispatcher', 'department', 'chief', 'admin')),
        name TEXT NOT NULL,
        subject TEXT NOT NULL,
        created_at {ts} NOT NULL,
        revoked_at {ts})""",
    """CREATE TABLE IF NOT EXISTS components (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        class_code TEXT NOT NULL,
        dept_code TEXT NOT NULL,
        dept_name TEXT NOT NULL,
        owner TEXT NOT NULL,
        maintainer TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('完好', '破损', '丢失', '废弃', '移除')),
        first_survey_date {day} NOT NULL,
        change_date {day} NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('实测', '地形图', '其他')),
        accuracy_m {real},
        synthetic INTEGER NOT NULL,
        geom {geom} NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS components_cell ON components (cell_code)""",
    """CREATE TABLE IF NOT EXISTS dispute_tasks (
        id TEXT PRIMARY KEY,
        level TEXT NOT NULL,
        event_class TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'closed')),
        lead_code TEXT NOT NULL,
        lead_rule TEXT NOT NULL,
        geom {geom} NOT NULL,
        footprint {geom} NOT NULL,
        footprint_key TEXT NOT NULL,
        accuracy_m {real} NOT NULL,
        opened_at {ts} NOT NULL,
        opened_by TEXT NOT NULL,
        deadline {ts},
        closed_at {ts},
        overrides TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS dispute_tasks_open
        ON dispute_tasks (status, event_class, level, opened_at)""",
    """CREATE TABLE IF NOT EXISTS dispute_parties (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        share {real} NOT NULL,
        role TEXT NOT NULL,
        checked_in_at {ts},
        part TEXT NOT NULL,
        done_at {ts},
        PRIMARY KEY (task_id, code))""",
    """CREATE INDEX IF NOT EXISTS dispute_parties_code ON dispute_parties (code)""",
    """CREATE TABLE IF NOT EXISTS dispute_departments (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        name TEXT NOT NULL,
        called_by TEXT NOT NULL,
        called_at {ts} NOT NULL,
        reported_at {ts},
        PRIMARY KEY (task_id, code))""",
    """CREATE TABLE IF NOT EXISTS dispute_meetings (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at {ts} NOT NULL,
        place TEXT NOT NULL,
        convened_by TEXT NOT NULL,
        attendees TEXT NOT NULL,
        notes TEXT NOT NULL,
        PRIMARY KEY (task_id, seq))""",
    """CREATE TABLE IF NOT EXISTS dispute_steps (
        task_id TEXT NOT NULL REFERENCES dispute_tasks(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        at {ts} NOT NULL,
        actor TEXT NOT NULL,
        party_code TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (task_id, seq))""",
    """CREATE TABLE IF NOT EXISTS dispute_overrides (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        level TEXT NOT NULL,
        assigned_code TEXT NOT NULL,
        valid_from {day} NOT NULL,
        valid_to {day},
        agreed_by TEXT NOT NULL,
        buffer_m {real} NOT NULL,
        geom {geom} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS heat_alerts (
        id {id},
        dataset TEXT NOT NULL,
        cell_code TEXT NOT NULL,
        cell_codes TEXT NOT NULL,
        start TEXT NOT NULL,
        "end" TEXT NOT NULL,
        peak TEXT NOT NULL,
        hour_of_week INTEGER NOT NULL,
        cell_count {real} NOT NULL,
        count {real} NOT NULL,
        baseline {real} NOT NULL,
        expected {real} NOT NULL,
        z {real} NOT NULL,
        p {real} NOT NULL,
        q {real} NOT NULL,
        fdr {real} NOT NULL,
        recurrence INTEGER NOT NULL,
        reason_zh TEXT NOT NULL,
        reason_en TEXT NOT NULL,
        created_at {ts} NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS heat_alerts_start ON heat_alerts (start)""",
    """CREATE INDEX IF NOT EXISTS heat_alerts_cell ON heat_alerts (cell_code)""",
]

# Spatial indexes: PostGIS only (SQLite answers spatial questions from its in-memory trees).
_V1_SPATIAL = [
    "CREATE INDEX IF NOT EXISTS divisions_geom ON divisions USING GIST (geom)",
    "CREATE INDEX IF NOT EXISTS cells_geom ON cells USING GIST (geom)",
    "CREATE INDEX IF NOT EXISTS components_geom ON components USING GIST (geom)",
    "CREATE INDEX IF NOT EXISTS dispute_tasks_footprint ON dispute_tasks USING GIST (footprint)",
    "CREATE INDEX IF NOT EXISTS alleys_geom ON alleys USING GIST (geom)",
]

# Version 3: tokens get a life cycle (expiry, last use); alerts are kept by city.
_V3 = [
    "ALTER TABLE tokens ADD COLUMN expires_at {ts}",
    "CREATE INDEX IF NOT EXISTS cases_street ON cases (street_code, reported_at)",
]

# Version 4: tokens get a short public id (what `gridcore token list` shows and `revoke`
# takes) and the time of their last use. The id is the first 12 hex digits of the token's
# SHA-256 digest (`gridcore.store._people.token_id`): the digest of 256 random bits, so it
# reveals nothing of the token, and rows stored before have one without a data step.
_V4 = [
    "ALTER TABLE tokens ADD COLUMN id TEXT",
    "ALTER TABLE tokens ADD COLUMN last_used_at {ts}",
    "UPDATE tokens SET id = substr(token_hash, 1, 12) WHERE id IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS tokens_id ON tokens (id)",
]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: DDL statements, then an optional data step.

    ``run(tx)`` receives the store's transaction helper (see `gridcore.store._base`).
    """

    version: int
    description: str
    statements: list[str] = field(default_factory=list)
    spatial: list[str] = field(default_factory=list)
    run: Callable | None = None


def _normalise_instants(tx) -> None:
    """Rewrite every stored instant in the one fixed-width UTC form (SQLite text only).

    The first release wrote some times with seconds, some with microseconds and joint
    tasks with their own offset, so text comparison did not always follow time.
    """
    from .._time import encode_instant, to_utc

    if tx.dialect.name != "sqlite":
        return
    import datetime as dt

    columns = {
        "grid_versions": ("id", ["created_at"]),
        "cases": ("id", ["reported_at", "closed_at", "updated_at"]),
        "case_events": ("rowid", ["at"]),
        "case_followups": ("id", ["at"]),
        "idempotency_keys": ("rowid", ["created_at"]),
        "tokens": ("rowid", ["created_at", "revoked_at"]),
        "dispute_tasks": ("rowid", ["opened_at", "deadline", "closed_at"]),
        "dispute_parties": ("rowid", ["checked_in_at", "done_at"]),
        "dispute_departments": ("rowid", ["called_at", "reported_at"]),
        "dispute_meetings": ("rowid", ["at"]),
        "dispute_steps": ("rowid", ["at"]),
        "heat_alerts": ("id", ["created_at"]),
    }
    for table, (key, cols) in columns.items():
        rows = tx.rows(f"SELECT {key} AS k, {', '.join(cols)} FROM {table}")
        updates = []
        for r in rows:
            new = [encode_instant(to_utc(dt.datetime.fromisoformat(r[c]))) if r[c] else None
                   for c in cols]
            if new != [r[c] for c in cols]:
                updates.append((*new, r["k"]))
        if updates:
            sets = ", ".join(f"{c} = ?" for c in cols)
            tx.executemany(f"UPDATE {table} SET {sets} WHERE {key} = ?", updates)


def _forget_alley_cells(tx) -> None:
    """Drop the alley/cell cache so it is computed anew.

    The first release could leave a version marked done with no rows after a roster
    was replaced.
    """
    tx.execute("DELETE FROM alley_cells")
    tx.execute("DELETE FROM alley_cells_done")


_ROLES_V5 = ("supervisor", "dispatcher", "department", "chief", "volunteer", "street",
             "admin")


def _widen_token_roles(tx) -> None:
    """Let tokens hold the volunteer (小巷管家) and street office roles.

    PostgreSQL changes the check in place; SQLite cannot alter a check, so its tokens
    table is rebuilt with every row (the SQLite documentation's twelve-step way).
    """
    roles = ", ".join(f"'{r}'" for r in _ROLES_V5)
    if tx.dialect.name != "sqlite":
        tx.execute("ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_role_check")
        tx.execute(f"ALTER TABLE tokens ADD CONSTRAINT tokens_role_check "
                   f"CHECK (role IN ({roles}))")
        return
    cols = "token_hash, role, name, subject, created_at, revoked_at, expires_at, id, last_used_at"
    tx.execute(f"""CREATE TABLE tokens_v5 (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ({roles})),
        name TEXT NOT NULL,
        subject TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        expires_at TEXT,
        id TEXT,
        last_used_at TEXT)""")
    tx.execute(f"INSERT INTO tokens_v5 ({cols}) SELECT {cols} FROM tokens")
    tx.execute("DROP TABLE tokens")
    tx.execute("ALTER TABLE tokens_v5 RENAME TO tokens")
    tx.execute("CREATE UNIQUE INDEX IF NOT EXISTS tokens_id ON tokens (id)")


MIGRATIONS: list[Migration] = [
    Migration(1, "the first release's tables", _V1, _V1_SPATIAL),
    Migration(2, "instants as fixed-width UTC text; alley/cell cache rebuilt",
              run=lambda tx: (_normalise_instants(tx), _forget_alley_cells(tx))),
    Migration(3, "token expiry; cases by street", _V3),
    Migration(4, "token ids and last use", _V4),
    Migration(5, "volunteer and street office tokens", run=_widen_token_roles),
]
assert MIGRATIONS[-1].version == SCHEMA_VERSION
