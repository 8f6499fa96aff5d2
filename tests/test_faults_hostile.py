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
        "INSERT INTO runs (athlete, km) VALUES ('ana', 10.5)",
    ],
    "runs, steps and candidates of its own": [
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE steps (id INTEGER PRIMARY KEY, run INTEGER, count INTEGER)",
        "CREATE TABLE candidates (id INTEGER PRIMARY KEY, person TEXT)",
        "INSERT INTO runs (name) VALUES ('morning')",
    ],
    "our runs columns plus one of its own": [
        re.sub(
            r"stop_requested INTEGER NOT NULL DEFAULT 0\n\);",
            "stop_requested INTEGER NOT NULL DEFAULT 0, owner TEXT\n);",
            BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0],
            count=1,
        )
    ],
    "our runs with an older jobs table of its own": [
        BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0],
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, cron TEXT)",
    ],
    "nothing but a view": ["CREATE VIEW answer AS SELECT 42"],
    "our tables plus a view of its own": [
        BASE_SCHEMA.split("CREATE TABLE IF NOT EXISTS steps")[0],
        "CREATE VIEW recent AS SELECT id FROM runs",
    ],
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
    path = _sqlite_file(tmp_path / "theirs.db", "CREATE TABLE runs (id INTEGER PRIMARY KEY, km REAL)", user_version=3)
    before = path.read_bytes()
    code, err = cli(capsys, "runs", "--store", path)
    assert code == 2 and "is not an AutoShrink run store" in only_line(err) and "km" in err
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_every_earlier_schema_still_migrates(tmp_path, version):
    """Stores written by earlier versions (schema 1 .. N-1, marked or not) open and keep their runs."""
    path = tmp_path / "old.db"
    statements = [
        *_split(BASE_SCHEMA + JOBS_SCHEMA),
        *[s for _, sql in MIGRATIONS[: version - 1] for s in _split(sql)],
        "INSERT INTO runs (task, status, config, created_at) VALUES ('cnn', 'finished', '{}', 1.0)",
    ]
    _sqlite_file(path, *statements, user_version=version)
    store = Store(path)
    assert [r.id for r in store.list_runs()] == [1]
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_an_unmarked_first_schema_store_without_jobs_tables_is_adopted(tmp_path):
    path = _sqlite_file(
        tmp_path / "old.db",
        *_split(BASE_SCHEMA),
        "INSERT INTO runs (task, status, config, created_at) VALUES ('rnn', 'stopped', '{}', 1.0)",
    )
    assert [r.task for r in Store(path).list_runs()] == ["rnn"]


def _split(script: str) -> list[str]:
    from core.store.schema import _statements

    return _statements(script)


# ----- view-only mode writes nothing ----------------------------------------------------------
SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "runs" / "cnn-cifar10-proxy.json.gz"


@pytest.fixture
def view_store(tmp_path, monkeypatch) -> Store:
    """A store with a finished and a stopped run (written in full mode), then view-only mode on."""
    from core.store.access import MODE_ENV
    from core.store.runs import RunStatus

    monkeypatch.delenv(MODE_ENV, raising=False)
    store = Store(tmp_path / "class.db")
    committed_run(store)
    store.finish(committed_run(store), RunStatus.STOPPED)
    monkeypatch.setenv(MODE_ENV, "view")
    return store


def test_view_mode_core_refuses_a_bundle_import(view_store):
    from core.search.bundle import import_bundle, import_file, import_samples
    from core.store.access import ReadOnlyError

    before = snapshot(view_store)
    for call in (
        lambda: import_bundle(view_store, SAMPLE.read_bytes(), SAMPLE.name),
        lambda: import_file(view_store, SAMPLE),
        lambda: import_samples(view_store, SAMPLE.parent),
        lambda: view_store.insert_run({}, [], []),
    ):
        with pytest.raises(ReadOnlyError, match="importing a run bundle is not allowed in view-only mode"):
            call()
    assert snapshot(view_store) == before


@pytest.mark.parametrize("command", [["import-run", SAMPLE], ["resume", 2], ["search", "cnn", *TINY_SEARCH]])
def test_view_mode_cli_writes_nothing(view_store, capsys, command):
    """The mode is the core's, so a CLI under AUTOSHRINK_MODE=view is refused too: one line, exit 2."""
    before = snapshot(view_store)
    code, err = cli(capsys, *command, "--store", view_store.path)
    assert code == 2 and "view-only mode" in only_line(err), err
    assert snapshot(view_store) == before


def test_view_mode_claim_of_a_training_job_is_refused(view_store, monkeypatch, capsys):
    from core.cell.presets import load_preset
    from core.store.access import MODE_ENV
    from core.store.jobs import JobStore
    from core.store.runs import RunStatus

    jobs = JobStore(view_store.path)
    monkeypatch.delenv(MODE_ENV)
    job = jobs.create_job("cnn", load_preset("shrinkcnn-a"), {})
    jobs.finish_job(job, RunStatus.STOPPED)
    monkeypatch.setenv(MODE_ENV, "view")
    code, err = cli(capsys, "train", "--resume", job, "--store", view_store.path)
    assert code == 2 and "view-only mode" in only_line(err), err
    assert jobs.get_job(job).status == RunStatus.STOPPED and jobs.epochs(job) == []


def _sidebar_app(monkeypatch, store_path: Path, view: bool, samples: str = "off"):
    from streamlit.testing.v1 import AppTest

    from core.store.access import MODE_ENV

    monkeypatch.setenv("AUTOSHRINK_STORE", str(store_path))
    monkeypatch.setenv("AUTOSHRINK_SAMPLES", samples)
    if view:
        monkeypatch.setenv(MODE_ENV, "view")
    else:
        monkeypatch.delenv(MODE_ENV, raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_view_mode_page_offers_no_upload_and_imports_no_samples(monkeypatch, tmp_path):
    """Full mode offers the sidebar's upload (so the check below can see one); view mode does not,
    and a view server imports no samples into an empty store (the store stays empty)."""
    full = _sidebar_app(monkeypatch, tmp_path / "full.db", view=False)
    assert full.get("file_uploader") and any(b.label == "Import" for b in full.sidebar.button)
    store = Store(tmp_path / "class.db")
    committed_run(store)
    before = snapshot(store)
    view = _sidebar_app(monkeypatch, store.path, view=True, samples=str(SAMPLE.parent))
    assert not view.get("file_uploader") and not any(b.label == "Import" for b in view.sidebar.button)
    assert not any("Import a run bundle" in e.label for e in view.sidebar.expander)
    assert snapshot(store) == before  # the shipped samples were not imported either


# ----- --embedding-init glove:PATH that cannot be read ---------------------------------------
RNN_DIM = 64  # the rnn demo preset's emb (= hidden)
GLOVE = {
    "missing": (None, "no GloVe file at"),
    "a directory": ("dir", "(it is a directory)"),
    "empty": (b"", "not GloVe text"),
    "binary": (b"\x89PNG\r\n\x1a\n\xff\xfe" * 10, "not UTF-8 text"),
    "words only": (b"the of and to\n", "not GloVe text"),
    "non-numeric": (b"the 0.1 zero 0.3\n", "not GloVe text"),
    "wrong size": (b"the " + b" ".join([b"0.5"] * 50) + b"\n", f"50 values for 'the', expected {RNN_DIM}"),
}


def _glove(tmp_path: Path, case: str) -> Path:
    content, _ = GLOVE[case]
    path = tmp_path / "glove.txt"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("case", GLOVE)
def test_unreadable_glove_is_refused_before_a_run_exists(tmp_path, capsys, case):
    store = Store(tmp_path / "runs.db")
    committed_run(store)
    before = snapshot(store)
    path = _glove(tmp_path, case)
    code, err = cli(capsys, "search", "rnn", *TINY_SEARCH, "--embedding-init", f"glove:{path}", "--store", store.path)
    assert code == 2 and GLOVE[case][1] in only_line(err), err
    assert snapshot(store) == before  # no failed run left behind


@pytest.mark.skipif(
    hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0,
    reason="root reads a file whatever its mode",
)
def test_glove_without_read_permission_is_refused(tmp_path, capsys):
    path = tmp_path / "glove.txt"
    path.write_text("the " + " ".join(["0.5"] * RNN_DIM) + "\n")
    path.chmod(0)
    code, err = cli(
        capsys, "search", "rnn", *TINY_SEARCH, "--embedding-init", f"glove:{path}", "--store", tmp_path / "runs.db"
    )
    assert code == 2 and "cannot read GloVe file" in only_line(err)
    assert Store(tmp_path / "runs.db").list_runs() == []


@pytest.mark.parametrize("case", ["missing", "binary", "wrong size"])
def test_the_app_start_path_refuses_unreadable_glove(tmp_path, case):
    """The Search page's Start calls Runner.start_search: the same one line, no run row."""
    from core.errors import UserError
    from core.runner.threads import Runner
    from core.search.config import preset_config

    store = Store(tmp_path / "runs.db")
    cfg = preset_config("rnn", "demo", embedding_init=f"glove:{_glove(tmp_path, case)}")
    with pytest.raises(UserError, match=re.escape(GLOVE[case][1])):
        Runner().start_search(store, cfg)
    assert store.list_runs() == []


def test_a_good_glove_file_passes_the_start_check(tmp_path):
    from core.search.config import preset_config
    from core.search.loop import check_startable

    path = tmp_path / "glove.txt"
    path.write_text("the " + " ".join(["0.5"] * RNN_DIM) + "\nof " + " ".join(["-1e-3"] * RNN_DIM) + "\n")
    check_startable(preset_config("rnn", "demo", embedding_init=f"glove:{path}"))
