"""The store's schema, its mark, and its migrations: the only place the SQL tables are defined.

A store file is marked with `PRAGMA application_id` (ours: ASK1) and `PRAGMA user_version`
(the schema version). Opening a file:
- empty (or new): create the tables, mark it;
- marked as ours: apply the migrations it lacks, in order, in one transaction;
- unmarked but holding exactly our tables (written before stores were marked): adopt it;
- anything else (another program's SQLite file): refuse with one line, touching nothing.

"Our tables" means our columns, not our table names: another program's file may well hold a
table called `runs`. Before anything is written, every table, trigger and index in the file
must be one the schema of its version makes, with exactly that version's columns (the
expected shape is built from BASE_SCHEMA, JOBS_SCHEMA and MIGRATIONS in memory, so it can
never drift from them).

To change the schema, append to MIGRATIONS; never edit an entry that has shipped.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

APPLICATION_ID = 0x41534B31  # "ASK1": AutoShrink Studio store

# Columns shared by tables: a trained cell's measures (candidates, control_cells) and a
# background job's lifecycle (runs, jobs, controls). Joined into the SQL text below, which
# stays byte-for-byte what shipped.
_TRAINED_COLUMNS = """
    status TEXT NOT NULL,
    accuracy REAL,
    perplexity REAL,
    macs INTEGER,
    flops INTEGER,
    params INTEGER,
    score REAL,
    epochs INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT NOT NULL DEFAULT '',
    wall_s REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    history TEXT NOT NULL DEFAULT '[]',
"""[1:]
_LIFECYCLE_COLUMNS = """
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat REAL,
    pid INTEGER,
    host TEXT,
    error TEXT NOT NULL DEFAULT '',
    progress TEXT NOT NULL DEFAULT '{}',
"""[1:]

BASE_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    evaluator TEXT NOT NULL DEFAULT '',
    expected_steps INTEGER NOT NULL DEFAULT 0,
"""
    + _LIFECYCLE_COLUMNS
    + """    stop_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    edges INTEGER NOT NULL,
    removed TEXT,
    genotype TEXT NOT NULL,
    score REAL,
    accuracy REAL,
    perplexity REAL,
    macs INTEGER,
    flops INTEGER,
    params INTEGER,
    wall_s REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS candidates (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    edge TEXT,
    genotype TEXT NOT NULL,
"""
    + _TRAINED_COLUMNS
    + """    PRIMARY KEY (run_id, step, idx)
);
"""
)

JOBS_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    genotype TEXT NOT NULL,
    config TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
"""
    + _LIFECYCLE_COLUMNS
    + """    metrics TEXT NOT NULL DEFAULT '{}',
    stop_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_epochs (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_acc REAL,
    train_ppl REAL,
    val_loss REAL,
    val_acc REAL,
    val_ppl REAL,
    lr REAL,
    throughput REAL,
    seconds REAL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, epoch)
);
CREATE TRIGGER IF NOT EXISTS job_epochs_no_update BEFORE UPDATE ON job_epochs
BEGIN SELECT RAISE(ABORT, 'job epoch rows are immutable'); END;
CREATE TRIGGER IF NOT EXISTS job_epochs_no_delete BEFORE DELETE ON job_epochs
BEGIN SELECT RAISE(ABORT, 'job epoch rows are immutable'); END;
"""
)

CONTROLS_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS controls (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    status TEXT NOT NULL,
    samples INTEGER NOT NULL,
    targets TEXT NOT NULL DEFAULT '[]',
    device TEXT NOT NULL DEFAULT '',
    evaluator TEXT NOT NULL DEFAULT '',
"""
    + _LIFECYCLE_COLUMNS
    + """    stop_requested INTEGER NOT NULL DEFAULT 0,
    wall_s REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS control_cells (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    target INTEGER NOT NULL,
    sample INTEGER NOT NULL,
    genotype TEXT NOT NULL,
"""
    + _TRAINED_COLUMNS
    + """    worker TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, target, sample)
);
"""
)

# (what it adds, SQL) -- version = 1 + index; version 1 is BASE_SCHEMA + JOBS_SCHEMA.
MIGRATIONS: list[tuple[str, str]] = [
    # where a job keeps its files: rows from before are 'legacy' (<store dir>/jobs/<id>/)
    ("jobs.files", "ALTER TABLE jobs ADD COLUMN files TEXT NOT NULL DEFAULT 'legacy'"),
    ("runs.cluster", "ALTER TABLE runs ADD COLUMN cluster TEXT NOT NULL DEFAULT '{}';"),
    ("candidates.worker", "ALTER TABLE candidates ADD COLUMN worker TEXT NOT NULL DEFAULT '';"),
    ("runs.name", "ALTER TABLE runs ADD COLUMN name TEXT NOT NULL DEFAULT '';"),
    # the noise a run measured at step 0 (metric, std over seeds), JSON; '{}' = not measured
    ("runs.noise", "ALTER TABLE runs ADD COLUMN noise TEXT NOT NULL DEFAULT '{}';"),
    # where a run came from when it was imported from a bundle (command, device, wall time), JSON
    ("runs.meta", "ALTER TABLE runs ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';"),
    # the random-removal control of a run (core.search.control): its lifecycle row and its cells,
    # one immutable row per trained random cell (committed one at a time, so a resume skips them)
    ("controls", CONTROLS_SCHEMA),
]

SCHEMA_VERSION = 1 + len(MIGRATIONS)
OUR_TABLES = frozenset(
    {"runs", "steps", "candidates", "jobs", "job_epochs", "sqlite_sequence", "controls", "control_cells"}
)


class NotOurStore(Exception):
    """The file is an SQLite database of another program, or of a newer version of this one."""


def prepare(con: sqlite3.Connection, path: Path) -> None:
    """Check the mark, then create or migrate the tables (see the module docstring)."""
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables and not _looks_like_ours(tables)):
        raise NotOurStore(f"{path} is not an AutoShrink run store (it holds {_names(tables)}); choose another --store")
    if version > SCHEMA_VERSION:
        raise NotOurStore(
            f"{path} was written by a newer AutoShrink Studio (schema {version}, "
            f"this one knows {SCHEMA_VERSION}); upgrade to open it"
        )
    if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
        return
    objects = con.execute("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0]
    if objects:  # about to adopt or migrate it: its shape must be one we wrote (a lone view is not)
        mismatch = _shape_mismatch(con, version)
        if mismatch:
            raise NotOurStore(f"{path} is not an AutoShrink run store ({mismatch}); choose another --store")
    con.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(BASE_SCHEMA + JOBS_SCHEMA):
            con.execute(statement)
        for _, sql in MIGRATIONS[max(version - 1, 0) :]:
            for statement in _statements(sql):
                con.execute(statement)
        con.execute(f"PRAGMA application_id={APPLICATION_ID}")
        con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _looks_like_ours(tables: set[str]) -> bool:
    """An unmarked file written by an earlier version: our runs table and nothing foreign."""
    return "runs" in tables and tables <= OUR_TABLES


def _shape(con: sqlite3.Connection) -> dict[tuple[str, str], frozenset[str]]:
    """(type, name) -> column names (tables) or () for every object SQLite did not make itself."""
    rows = con.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    return {
        (kind, name): frozenset(r[1] for r in con.execute(f'PRAGMA table_info("{name}")'))
        if kind == "table"
        else frozenset()
        for kind, name in rows
    }


def expected_shape(version: int) -> dict[tuple[str, str], frozenset[str]]:
    """What a store of schema `version` holds (0 = unmarked: the first schema), built in memory."""
    mem = sqlite3.connect(":memory:")
    try:
        for statement in _statements(BASE_SCHEMA + JOBS_SCHEMA):
            mem.execute(statement)
        for _, sql in MIGRATIONS[: max(version - 1, 0)]:
            for statement in _statements(sql):
                mem.execute(statement)
        return _shape(mem)
    finally:
        mem.close()


def _shape_mismatch(con: sqlite3.Connection, version: int) -> str:
    """'' when every object in the file is one our schema `version` makes, with its exact columns
    (a store may predate the jobs tables, so ours may be missing); else what is foreign."""
    want, have = expected_shape(version), _shape(con)
    if ("table", "runs") not in have:
        return f"no runs table of ours; it holds {_names({n for k, n in have if k == 'table'})}"
    for (kind, name), columns in sorted(have.items()):
        if (kind, name) not in want:
            return f"it holds the {kind} {name!r}, which is not ours"
        if columns != want[(kind, name)]:
            return f"its {name!r} table has columns {', '.join(sorted(columns))}, not those of schema {max(version, 1)}"
    return ""


def _names(tables: set[str]) -> str:
    shown = sorted(tables)[:5]
    return ", ".join(shown) + (", ..." if len(tables) > 5 else "") if shown else "no tables"


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (triggers keep their BEGIN ... END; bodies)."""
    parts, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            parts.append(text)
            current = []
    rest = "\n".join(current).strip()
    if rest:  # a last statement without its ';' (as a one-line migration is written) still runs
        parts.append(rest)
    return parts
