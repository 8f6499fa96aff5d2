import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from core.cell.genotype import Genotype
from core.store.runs import CandidateRecord, RunStatus, StepRecord, Store, StoreError, best_of, default_store_path

G = Genotype.dense("cnn", 4, seed=0)


def step(n: int, score: float | None, edges: int) -> StepRecord:
    return StepRecord(step=n, edges=edges, removed=None if n == 0 else (0, n), genotype=G, score=score)


def cand(n: int, idx: int) -> CandidateRecord:
    return CandidateRecord(step=n, idx=idx, edge=(0, 1), genotype=G, status="ok", accuracy=0.5, score=0.1)


def test_store_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSHRINK_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("AUTOSHRINK_STORE")
    assert str(default_store_path()).endswith("runs/autoshrink.db")


def test_wal_mode_and_round_trip(store_path):
    store = Store(store_path)
    with sqlite3.connect(store_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    run = store.create_run("cnn", {"seed": 1}, expected_steps=5)
    store.commit_step(run, step(0, 0.3, 6), [cand(0, 0)])
    store.commit_step(run, step(1, 0.5, 5), [cand(1, 0), cand(1, 1)])
    assert [s.step for s in store.steps(run)] == [0, 1]
    assert store.steps(run)[1].removed == (0, 1)
    assert len(store.candidates(run, step=1)) == 2
    assert store.candidates(run)[0].genotype == G
    assert store.get_run(run).config == {"seed": 1}


def test_a_step_commits_whole_or_not_at_all(store_path):
    store = Store(store_path)
    run = store.create_run("cnn", {}, 3)
    with pytest.raises(sqlite3.IntegrityError):  # duplicate candidate idx inside one step
        store.commit_step(run, step(0, 0.3, 6), [cand(0, 0), cand(0, 0)])
    assert store.steps(run) == [] and store.candidates(run) == []


def test_best_snapshot_prefers_score_then_fewer_edges():
    steps = [step(0, 0.5, 6), step(1, 0.7, 5), step(2, 0.7, 4), step(3, None, 3)]
    assert best_of(steps).step == 2
    assert best_of([step(0, None, 6)]) is None


def test_the_dense_baseline_is_never_the_result():
    """Rule: step 0 (the dense DAG) is a reference row; the result is chosen among steps >= 1."""
    assert best_of([step(0, 0.9, 6), step(1, 0.5, 5), step(2, 0.4, 4)]).step == 1
    assert best_of([step(0, 0.9, 6)]) is None


def test_unknown_run_is_a_one_line_error(store_path):
    with pytest.raises(StoreError, match="unknown run 42"):
        Store(store_path).get_run(42)


def test_run_of_a_dead_process_reads_as_interrupted(store_path):
    store = Store(store_path)
    run = store.create_run("cnn", {}, 3)
    store.claim(run, "cpu", "single")
    assert store.get_run(run).status == RunStatus.RUNNING  # this process is alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(store_path) as con:
        con.execute("UPDATE runs SET pid=? WHERE id=?", (int(dead.stdout), run))
    assert store.get_run(run).status == RunStatus.INTERRUPTED
    store.finish(run, RunStatus.FINISHED)
    assert store.get_run(run).status == RunStatus.FINISHED
    queued = store.create_run("cnn", {}, 3)  # its creator died before the search claimed it
    assert store.get_run(queued).status == "queued"
    with sqlite3.connect(store_path) as con:
        con.execute("UPDATE runs SET created_at=created_at-600 WHERE id=?", (queued,))
    assert store.get_run(queued).status == RunStatus.INTERRUPTED


def test_other_processes_read_while_a_writer_holds_a_transaction(store_path):
    store = Store(store_path)
    run = store.create_run("cnn", {}, 3)
    store.commit_step(run, step(0, 0.3, 6), [cand(0, 0)])
    con = sqlite3.connect(store_path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
    con.execute("UPDATE runs SET status='running' WHERE id=?", (run,))
    reader = textwrap.dedent(f"""
        from core.store.runs import Store
        s = Store({str(store_path)!r})
        print(len(s.steps({run})), s.get_run({run}).status)
    """)
    out = subprocess.run(
        [sys.executable, "-c", reader],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    con.execute("ROLLBACK")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "queued"]


def test_stop_request_flag(store_path):
    store = Store(store_path)
    run = store.create_run("cnn", {}, 3)
    assert not store.stop_requested(run)
    store.request_stop(run)
    assert store.stop_requested(run)
    store.claim(run, "cpu", "single")  # a (re)start clears an old request
    assert not store.stop_requested(run)


def test_live_progress_is_typed_and_stored_as_the_same_json(store_path):
    """The search and a training job beat typed progress values; the row keeps the JSON object it
    always kept (empty when nothing is in progress), and the records give the values back."""
    import json

    from core.store.jobs import JobStore
    from core.store.progress import JobProgress, SearchProgress

    store = JobStore(store_path)
    run = store.create_run("cnn", {}, 3)
    store.claim(run, "cpu", "single")
    assert store.get_run(run).progress == SearchProgress() and not store.get_run(run).progress.active
    done = cand(1, 0).to_dict()
    prog = SearchProgress(step=1, candidate=1, k=2, edges=9, started=5.0, done=(done,))
    store.beat(run, prog)
    with sqlite3.connect(store_path) as con:
        raw = json.loads(con.execute("SELECT progress FROM runs WHERE id=?", (run,)).fetchone()[0])
    assert raw == {"step": 1, "candidate": 1, "k": 2, "edges": 9, "started": 5.0, "done": [done]}
    assert store.get_run(run).progress == prog and store.get_run(run).to_dict()["progress"] == raw
    store.finish(run, RunStatus.FINISHED)
    assert store.get_run(run).progress == SearchProgress()
    job = store.create_job("cnn", G, {})
    jp = JobProgress("train", epoch=2, epochs=3, batch=4, batches=8, fraction=0.5, elapsed_s=1.0, extra={"note": "x"})
    store.beat_job(job, jp)
    with sqlite3.connect(store_path) as con:
        raw = json.loads(con.execute("SELECT progress FROM jobs WHERE id=?", (job,)).fetchone()[0])
    assert raw == {
        "phase": "train",
        "epoch": 2,
        "epochs": 3,
        "batch": 4,
        "batches": 8,
        "fraction": 0.5,
        "elapsed_s": 1.0,
        "eta_s": None,
        "note": "x",
    }
    assert store.get_job(job).progress == jp


def test_store_is_marked_and_a_foreign_sqlite_file_is_refused_untouched(tmp_path):
    import sqlite3

    from core.store.schema import APPLICATION_ID, SCHEMA_VERSION

    ours = tmp_path / "ours.db"
    Store(ours)
    con = sqlite3.connect(ours)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    con.execute("INSERT INTO notes (body) VALUES ('keep me')")
    con.commit()
    con.close()
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match="not an AutoShrink run store.*notes"):
        Store(foreign)
    assert foreign.read_bytes() == before
    assert not (tmp_path / "foreign.db-wal").exists()


def test_an_unmarked_store_of_the_previous_version_is_adopted(tmp_path):
    """Stores written before the mark existed (our tables, application_id 0) still open."""
    import sqlite3

    from core.store.schema import APPLICATION_ID, BASE_SCHEMA

    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript(BASE_SCHEMA)
    con.execute("INSERT INTO runs (task, status, config, created_at) VALUES ('cnn', 'finished', '{}', 1.0)")
    con.commit()
    con.close()
    store = Store(old)
    assert [r.id for r in store.list_runs()] == [1]
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert "jobs" in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}


def test_control_progress_is_typed_and_stored_as_the_same_json(store_path):
    import json

    from core.store.controls import beat_control, claim_control, get_control
    from core.store.progress import ControlProgress

    store = Store(store_path)
    run = store.create_run("cnn", {}, 3)
    claim_control(store, run, 2, [6, 4], "cpu")
    assert get_control(store, run).progress == ControlProgress()
    prog = ControlProgress(target=6, done=1, total=4, started=2.0, sample=1, epoch=3, cells=({"target": 6},))
    beat_control(store, run, prog)
    with sqlite3.connect(store_path) as con:
        raw = json.loads(con.execute("SELECT progress FROM controls WHERE run_id=?", (run,)).fetchone()[0])
    assert raw == {
        "target": 6,
        "done": 1,
        "total": 4,
        "started": 2.0,
        "sample": 1,
        "epoch": 3,
        "cells": [{"target": 6}],
    }
    control = get_control(store, run)
    assert control.progress == prog and control.to_dict()["progress"] == raw


def test_a_run_keeps_its_vocabulary_size_beside_its_other_meta(store_path):
    store = Store(store_path)
    run = store.create_run("rnn", {}, 3)
    store.set_meta(run, {"command": "python -m core search rnn"})
    assert store.get_run(run).vocab_size is None  # not recorded (yet): readers fall back
    store.record_vocab_size(run, 500)
    assert store.get_run(run).vocab_size == 500
    assert store.get_run(run).meta == {"command": "python -m core search rnn", "vocab_size": 500}
    store.set_meta(run, {"vocab_size": "many"})  # e.g. from a bundle someone edited
    assert store.get_run(run).vocab_size is None
