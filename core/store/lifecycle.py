"""The life of a row that a process works on: searches (`runs`), training jobs (`jobs`) and
random controls (`controls`) share it.

A row is claimed by one process (status running, its pid and host, a heartbeat), beaten while
the work goes on (heartbeat plus the live progress JSON), asked to stop by any process
(`stop_requested`), and finished with a final status. Readers never trust a stored `running`
blindly: `effective_status` reads a row whose process is gone as interrupted. The SQL for all
three tables is written here once, over a `Lifecycle` that names the table and its key.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.store.access import require_write
from core.store.connection import StoreError, connect, transaction

STALE_AFTER_S = 120.0  # a running row whose heartbeat is older than this is taken for dead


class RunStatus(StrEnum):
    """Where a search run or a training job is in its life; the value is what the store keeps.

    `live`: a process is (or is about to be) working on it, so it can be stopped, not deleted;
    `resumable`: it ended before its stop rule, and `resume` goes on from what it committed.
    """

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # read, never written: a running row whose process is gone

    @property
    def live(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.QUEUED)

    @property
    def resumable(self) -> bool:
        return self in (RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED)


@dataclass(frozen=True)
class Lifecycle:
    """One table with a lifecycle: its name, its key column, and the words its messages use."""

    table: str
    key: str
    noun: str  # "run 3 has already finished"
    run_action: str  # what a view-only claim refuses
    stop_action: str  # what a view-only stop request refuses


RUNS = Lifecycle("runs", "id", "run", "running a search", "stopping a search or training job")
JOBS = Lifecycle("jobs", "id", "training job", "running a training job", "stopping a search or training job")
CONTROLS = Lifecycle("controls", "run_id", "control of run", "running a random control", "stopping a random control")


def claim(path: Path, kind: Lifecycle, row_id: int, device: str, **extra: str) -> None:
    """Mark a run or job as running in this process (start or resume); clears an old stop request.

    Check and update are one IMMEDIATE transaction, so of two processes claiming the same
    row one wins and the other gets a one-line StoreError, having changed nothing."""
    require_write(kind.run_action)  # e.g. a CLI resume
    now = time.time()
    sets = "".join(f", {col}=?" for col in extra)
    with transaction(path) as con:
        row = con.execute(f"SELECT * FROM {kind.table} WHERE {kind.key}=?", (row_id,)).fetchone()
        refuse_claim(kind, row_id, row, path)
        con.execute(
            f"UPDATE {kind.table} SET status=?, device=?, pid=?, host=?, heartbeat=?, error='', finished_at=NULL,"
            f" started_at=COALESCE(started_at, ?), stop_requested=0{sets} WHERE {kind.key}=?",
            (RunStatus.RUNNING, device, os.getpid(), socket.gethostname(), now, now, *extra.values(), row_id),
        )


def check_claimable(path: Path, kind: Lifecycle, row_id: int) -> None:
    """The early, friendly refusal (one line) of a claim; the claim itself checks again, atomically."""
    require_write(kind.run_action)
    with connect(path) as con:
        row = con.execute(f"SELECT * FROM {kind.table} WHERE {kind.key}=?", (row_id,)).fetchone()
    refuse_claim(kind, row_id, row, path)


def beat(path: Path, kind: Lifecycle, row_id: int, progress: dict) -> None:
    """Heartbeat plus live progress, so readers elsewhere can show where the work is."""
    with transaction(path) as con:
        con.execute(
            f"UPDATE {kind.table} SET heartbeat=?, progress=? WHERE {kind.key}=?",
            (time.time(), json.dumps(progress), row_id),
        )


def touch(con: sqlite3.Connection, kind: Lifecycle, row_id: int, at: float | None = None) -> None:
    """A heartbeat inside the caller's transaction (the one that commits a step, epoch or cell)."""
    con.execute(f"UPDATE {kind.table} SET heartbeat=? WHERE {kind.key}=?", (at or time.time(), row_id))


def request_stop(path: Path, kind: Lifecycle, row_id: int) -> None:
    """Ask the process working on the row (any process) to stop after the current batch."""
    require_write(kind.stop_action)
    with transaction(path) as con:
        con.execute(f"UPDATE {kind.table} SET stop_requested=1 WHERE {kind.key}=?", (row_id,))


def stop_requested(path: Path, kind: Lifecycle, row_id: int) -> bool:
    with connect(path) as con:
        row = con.execute(f"SELECT stop_requested FROM {kind.table} WHERE {kind.key}=?", (row_id,)).fetchone()
    return bool(row and row[0])


def finish(
    path: Path,
    kind: Lifecycle,
    row_id: int,
    status: str,
    error: str = "",
    *,
    clear_progress: bool = False,
    values: dict | None = None,
    add: dict | None = None,
) -> None:
    """The final status of this session of work: `values` set more columns, `add` adds to them
    (a control's total wall time), `clear_progress` empties the live progress."""
    now = time.time()
    sets = ["status=?", "error=?", "finished_at=?", "heartbeat=?"] + (["progress='{}'"] if clear_progress else [])
    sets += [f"{col}=?" for col in values or {}] + [f"{col}={col}+?" for col in add or {}]
    args = [status, error, now, now, *(values or {}).values(), *(add or {}).values(), row_id]
    with transaction(path) as con:
        con.execute(f"UPDATE {kind.table} SET {', '.join(sets)} WHERE {kind.key}=?", args)


def alive(host: str | None, pid: int | None, heartbeat: float | None) -> bool:
    """Whether the process that owns a row still runs: asked of the OS on this host, else
    judged by the heartbeat's age."""
    if host == socket.gethostname() and pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _pid_is_not_zombie(pid)
    return heartbeat is not None and time.time() - heartbeat < STALE_AFTER_S


def effective_status(row: sqlite3.Row) -> str:
    """A row's status as readers should see it: `running` whose process is gone, or `queued`
    whose creator died (or never claimed it within STALE_AFTER_S), reads interrupted."""
    status = row["status"]
    if status == RunStatus.RUNNING and not alive(row["host"], row["pid"], row["heartbeat"]):
        return RunStatus.INTERRUPTED
    if status == RunStatus.QUEUED:
        never_claimed = time.time() - row["created_at"] > STALE_AFTER_S
        creator_gone = row["pid"] is not None and not alive(row["host"], row["pid"], row["created_at"])
        if never_claimed or creator_gone:
            return RunStatus.INTERRUPTED
    return status


def record_fields(row: sqlite3.Row) -> dict:
    """The lifecycle fields of a run's or job's row, for its record: the status as readers should
    see it (effective_status), owner and times, and the live progress as a dict."""
    return {
        "status": effective_status(row),
        **{col: row[col] for col in ("created_at", "started_at", "finished_at", "heartbeat", "pid", "host", "error")},
        "progress": json.loads(row["progress"] or "{}"),
    }


def refuse_claim(kind: Lifecycle, row_id: int, row: sqlite3.Row | None, path: Path) -> None:
    """Raise the one-line reason why this process may not (re)start the run or job, if any."""
    what = kind.noun
    if row is None:
        raise StoreError(f"unknown {what} {row_id} in {path}")
    status = effective_status(row)
    if status == RunStatus.FINISHED:
        raise StoreError(f"{what} {row_id} has already finished; nothing to resume")
    if status == RunStatus.RUNNING:
        raise StoreError(
            f"{what} {row_id} is already running (pid {row['pid']} on {row['host']}); stop it before resuming"
        )
    ours = row["pid"] == os.getpid() and row["host"] == socket.gethostname()
    if status == RunStatus.QUEUED and row["pid"] is not None and not ours:
        raise StoreError(f"{what} {row_id} is being started by process {row['pid']} on {row['host']}")


def _pid_is_not_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
