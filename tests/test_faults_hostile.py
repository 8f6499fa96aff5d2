"""Fault suite, part 3: hostile cases a replay found still breaking (issue 17, item 4).

Classes: a foreign SQLite file with tables named like ours, view-only mode writing the
store (bundle import and every other write path), and a `--embedding-init glove:PATH` that
cannot be read. Each case asserts the one `error:` line, the exit code, and that the store
(or the foreign file) is unchanged, byte for byte where a file is involved. Run bundles with
out-of-range numbers are in tests/test_bundle_ranges.py; SIGTERM in tests/test_faults_sigterm.py.
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from fault_kit import TINY_SEARCH, cli, committed_run, only_line, snapshot

from core.store.runs import Store
from core.store.schema import BASE_SCHEMA, JOBS_SCHEMA, MIGRATIONS, SCHEMA_VERSION


def _sqlite_file(path: Path, *statements: str, user_version: int = 0) -> Path:
    with sqlite3.connect(path) as con:
        for sql in statements:
            con.execute(sql)
        if user_version:
            con.execute(f"PRAGMA user_version={user_version}")
    con.close()
    return path


# ----- foreign SQLite files with tables named like ours -----------------------------------------
FOREIGN = {
    "a runs table of its own": [
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, athlete TEXT, km REAL)",
        "INSERT INTO runs (athlete, km) VALUES ('ana', 10.5)"],
    "runs, steps and candidates of its own": [
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE steps (id INTEGER PRIMARY KEY, run INTEGER, count INTEGER)",
        "CREATE TABLE candidates (id INTEGER PRIMARY KEY, person TEXT)",
        "INSERT INTO runs (name) VALUES ('morning')"],
    "our runs columns plus one of its own": [
        re.sub(r"stop_requested INTEGER NOT NULL DEFAULT 0\n\);", "stop_requested INTEGER NOT NULL DEFAULT 0,"
               " owner TEXT\n);", BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0], count=1)],
    "our runs with an older jobs table of its own": [
        BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0],
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, cron TEXT)"],
    "our tables plus a view of its own": [
        BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0],
        "CREATE VIEW recent AS SELECT id FROM runs"],
}


@pytest.mark.parametrize("case", FOREIGN)
def test_a_foreign_file_with_our_table_names_is_refused_untouched(tmp_path, capsys, case):
    path = _sqlite_file(tmp_path / "theirs.db", *FOREIGN[case])
    before = path.read_bytes()
    for command in (["runs"], ["search", "cnn", *TINY_SEARCH]):
        code, err = cli(capsys, *command, "--store", path)
        assert code == 2 and "is not an AutoShrink run store" in only_line(err), (case, err)
        assert path.read_bytes() == before, case  # not a byte changed, no table added
    assert not (tmp_path / "theirs.db-wal").exists()


def test_a_foreign_file_that_claims_an_old_schema_version_is_refused(tmp_path, capsys):
    """user_version alone is not a mark: the columns must be those of that version."""
    path = _sqlite_file(tmp_path / "theirs.db", "CREATE TABLE runs (id INTEGER PRIMARY KEY, km REAL)",
                        user_version=3)
    before = path.read_bytes()
    code, err = cli(capsys, "runs", "--store", path)
    assert code == 2 and "is not an AutoShrink run store" in only_line(err) and "km" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_every_earlier_schema_still_migrates(tmp_path, version):
    """Stores written by earlier versions (schema 1 .. N-1, marked or not) open and keep their runs."""
    path = tmp_path / "old.db"
    statements = [*_split(BASE_SCHEMA + JOBS_SCHEMA), *[s for _, sql in MIGRATIONS[:version - 1] for s in _split(sql)],
                  "INSERT INTO runs (task, status, config, created_at) VALUES ('cnn', 'finished', '{}', 1.0)"]
    _sqlite_file(path, *statements, user_version=version)
    store = Store(path)
    assert [r.id for r in store.list_runs()] == [1]
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_an_unmarked_first_schema_store_without_jobs_tables_is_adopted(tmp_path):
    path = _sqlite_file(tmp_path / "old.db", *_split(BASE_SCHEMA),
                        "INSERT INTO runs (task, status, config, created_at) VALUES ('rnn', 'stopped', '{}', 1.0)")
    assert [r.task for r in Store(path).list_runs()] == ["rnn"]


def _split(script: str) -> list[str]:
    from core.store.schema import _statements
    return _statements(script)
