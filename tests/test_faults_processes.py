"""Fault suite, part 2: signals and several processes on one store.

Real `python -m core` processes on the digits demo at the smallest settings: Ctrl-C (SIGINT)
during a search and a training job, kill -9, two `resume`s at once, a `resume` while the
creating process is still starting, two stores in one folder. Each asserts the exit code, the
one line the loser prints, and that nothing committed is lost.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from fault_kit import TINY_SEARCH, cli, error_line, spawn
from helpers import tiny_config, wait_until

from core.cell.presets import load_preset
from core.runner.foreground import EXIT_INTERRUPTED
from core.search.loop import create_run
from core.store.jobs import JobStore
from core.store.runs import RunStatus, Store, StoreError
from core.store.schema import MIGRATIONS, SCHEMA_VERSION

TIMEOUT = 120
TINY_TRAIN = [
    "train",
    "preset:shrinkcnn-a",
    "--epochs",
    "2",
    "--max-batches",
    "3",
    "--no-onnx",
    "--threads",
    "1",
    "--width-multiplier",
    "0.25",
    "--cells-per-stage",
    "1,1,1",
]


def _status(db: Path, table: str, row_id: int = 1) -> str | None:
    """The raw status column, read without opening (and so without creating) a store."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute(f"SELECT status FROM {table} WHERE id=?", (row_id,)).fetchone()
        return row[0] if row else None
    except sqlite3.OperationalError:  # the creator is still making the tables
        return None


def _steps(db: Path) -> int:
    """Committed steps of run 1, read without creating the store."""
    if _status(db, "runs") is None:
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
        return con.execute("SELECT COUNT(*) FROM steps WHERE run_id=1").fetchone()[0]


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err


# ----- signals -------------------------------------------------------------------------------
def test_ctrl_c_stops_a_search_with_130_and_resume_finishes_it(tmp_path, capsys):
    db = tmp_path / "runs.db"
    proc = spawn("search", "cnn", *TINY_SEARCH, "--store", db)
    wait_until(
        lambda: _status(db, "runs") == RunStatus.RUNNING, "the search to claim its run", TIMEOUT, poll=0.05, proc=proc
    )
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc)
    assert code == EXIT_INTERRUPTED and "Traceback" not in err and "resume with `resume 1`" in err, err
    store = Store(db)
    assert store.get_run(1).status == RunStatus.STOPPED
    kept = [s.to_dict() for s in store.steps(1)]
    code, err = cli(capsys, "resume", 1, "--store", db)  # in-process: the same code path
    assert code == 0, err
    assert store.get_run(1).status == RunStatus.FINISHED and len(store.steps(1)) == 2  # baseline + 1 step
    assert [s.to_dict() for s in store.steps(1)][: len(kept)] == kept


def test_ctrl_c_stops_a_training_job_with_130_and_resume_finishes_it(tmp_path, capsys):
    db = tmp_path / "runs.db"
    proc = spawn(*TINY_TRAIN, "--store", db)
    wait_until(
        lambda: _status(db, "jobs") == RunStatus.RUNNING, "the job to claim its row", TIMEOUT, poll=0.05, proc=proc
    )
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc)
    assert code == EXIT_INTERRUPTED and "Traceback" not in err, err
    jobs = JobStore(db)
    assert jobs.get_job(1).status == RunStatus.STOPPED
    kept = [e.to_dict() for e in jobs.epochs(1)]
    code, err = cli(capsys, "train", "--resume", 1, "--store", db)
    assert code == 0, err
    assert jobs.get_job(1).status == RunStatus.FINISHED and [e.epoch for e in jobs.epochs(1)] == [1, 2]
    assert [e.to_dict() for e in jobs.epochs(1)][: len(kept)] == kept


def test_kill_9_keeps_the_committed_step_and_resume_finishes(tmp_path, capsys):
    db = tmp_path / "runs.db"
    proc = spawn("search", "cnn", *TINY_SEARCH, "--store", db)
    wait_until(lambda: _steps(db), "step 0 to commit", TIMEOUT, poll=0.05, proc=proc)
    proc.kill()
    proc.wait(TIMEOUT)
    store = Store(db)
    kept = [s.to_dict() for s in store.steps(1)]
    assert store.get_run(1).status == RunStatus.INTERRUPTED and kept
    code, err = cli(capsys, "resume", 1, "--store", db)  # in-process: the same code path
    assert code == 0, err
    assert store.get_run(1).status == RunStatus.FINISHED and [s.to_dict() for s in store.steps(1)][: len(kept)] == kept


# ----- several processes on one store ---------------------------------------------------------
def _stopped_run(db: Path) -> int:
    store = Store(db)
    run_id = create_run(store, tiny_config())
    store.finish(run_id, RunStatus.STOPPED)
    return run_id


def test_two_resumes_at_once_run_it_once_and_the_loser_changes_nothing(tmp_path):
    db = tmp_path / "runs.db"
    run_id = _stopped_run(db)
    procs = [spawn("resume", run_id, "--store", db) for _ in range(2)]
    results = sorted((_finish(p) for p in procs), key=lambda r: r[0])
    (win_code, win_err), (lose_code, lose_err) = results
    assert win_code == 0, win_err
    line = error_line(lose_err)
    assert lose_code == 2 and any(f in line for f in ("already running", "being started", "already finished")), line
    run = Store(db).get_run(run_id)
    assert run.status == RunStatus.FINISHED and run.error == "" and len(Store(db).steps(run_id)) == 2


def test_resume_while_the_creator_is_starting_is_refused(tmp_path, capsys):
    db = tmp_path / "runs.db"
    proc = spawn("search", "cnn", *TINY_SEARCH, "--store", db)
    wait_until(
        lambda: _status(db, "runs") in (RunStatus.QUEUED, RunStatus.RUNNING),
        "the run row",
        TIMEOUT,
        poll=0.05,
        proc=proc,
    )
    code, err = cli(capsys, "resume", 1, "--store", db)
    line = error_line(err)
    assert code == 2 and ("being started" in line or "already running" in line), line
    code, err = _finish(proc)
    assert code == 0, err
    store = Store(db)
    assert store.get_run(1).status == RunStatus.FINISHED and len(store.steps(1)) == 2


def test_a_queued_run_belongs_to_its_live_creator_until_it_dies(tmp_path):
    store = Store(tmp_path / "runs.db")
    run_id = store.create_run("cnn", {}, 3)
    creator = subprocess.Popen(["sleep", "60"])
    try:
        with sqlite3.connect(store.path) as con:
            con.execute("UPDATE runs SET pid=? WHERE id=?", (creator.pid, run_id))
        con.close()
        before = store.get_run(run_id)
        with pytest.raises(StoreError, match=f"being started by process {creator.pid}"):
            store.claim(run_id, "cpu", "single")
        assert store.get_run(run_id) == before  # the loser changed nothing
    finally:
        creator.kill()
        creator.wait()
    assert store.get_run(run_id).status == RunStatus.INTERRUPTED
    store.claim(run_id, "cpu", "single")  # now anyone may take it over
    assert store.get_run(run_id).status == RunStatus.RUNNING


def test_of_many_simultaneous_claims_exactly_one_wins(tmp_path):
    store = Store(tmp_path / "runs.db")
    run_id = store.create_run("cnn", {}, 3)
    store.finish(run_id, RunStatus.STOPPED)
    wins, losses, gate = [], [], threading.Barrier(6)

    def claim() -> None:
        gate.wait()
        try:
            Store(store.path).claim(run_id, "cpu", "single")
            wins.append(1)
        except StoreError as exc:
            losses.append(str(exc))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert len(wins) == 1 and len(losses) == 5
    assert all("already running" in m for m in losses)


def test_two_stores_in_one_folder_keep_their_job_files_apart(tmp_path):
    a, b = JobStore(tmp_path / "a.db"), JobStore(tmp_path / "b.db")
    g = load_preset("shrinkcnn-a")
    ja, jb = a.create_job("cnn", g, {}), b.create_job("cnn", g, {})
    assert ja == jb == 1
    assert a.job_dir(ja) == tmp_path / "a.db.jobs" / "1" and b.job_dir(jb) == tmp_path / "b.db.jobs" / "1"


def test_a_job_of_an_earlier_store_keeps_its_old_folder(tmp_path):
    """A store written before per-store job folders (schema 1): its job's checkpoint folder
    <dir>/jobs/1 is still found after the migration; a new store's job 1 beside it is not."""
    old = tmp_path / "old.db"
    JobStore(old).create_job("cnn", load_preset("shrinkcnn-a"), {})
    with sqlite3.connect(old) as con:  # back to schema 1: drop every column a migration added
        for _, sql in MIGRATIONS:
            added = re.match(r"ALTER TABLE (\w+) ADD COLUMN (\w+)", sql)
            if added:
                con.execute(f"ALTER TABLE {added[1]} DROP COLUMN {added[2]}")
            for table in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", sql):  # a migration's new tables
                con.execute(f"DROP TABLE {table}")
        con.execute("PRAGMA user_version=1")
    con.close()
    legacy = tmp_path / "jobs" / "1"
    legacy.mkdir(parents=True)
    (legacy / "checkpoint.pt").write_bytes(b"epoch 3")
    migrated = JobStore(old)
    with sqlite3.connect(old) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()
    assert migrated.job_dir(1) == legacy
    fresh = JobStore(tmp_path / "new.db")
    fresh.create_job("cnn", load_preset("shrinkcnn-a"), {})
    assert fresh.job_dir(1) == tmp_path / "new.db.jobs" / "1"
