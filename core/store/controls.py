"""The random-removal control of a run, in the store: one lifecycle row and its trained cells.

A control (core.search.control) trains random cells at some edge counts of a run, so the run's
chosen cells can be compared with chance. Its row (`controls`, one per run) holds the plan
(samples per count, the counts), status, owner and live progress, like a run's row; each trained
cell is an immutable `control_cells` row committed on its own, so a killed control loses at most
the cell in training and a resume trains only the cells that are missing.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass, field

from core.cell.genotype import Genotype
from core.store import lifecycle
from core.store.access import require_write
from core.store.connection import StoreError
from core.store.lifecycle import CONTROLS, RunStatus, effective_status
from core.store.progress import ControlProgress
from core.store.runs import RESULT_COLUMNS, Store, TrainedFields, result_fields, result_values

CELL_COLUMNS = ("run_id", "target", "sample", "genotype", *RESULT_COLUMNS, "created_at")


@dataclass(frozen=True)
class ControlCell(TrainedFields):
    """One trained random cell: asked for `target` edges, it has genotype.num_edges (fewer when
    pruning overshot); scored exactly as the run's candidates."""

    target: int
    sample: int
    genotype: Genotype
    status: str

    @property
    def edges(self) -> int:
        return self.genotype.num_edges

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "sample": self.sample,
            "edges": self.edges,
            "status": self.status,
            **self.measures(),
            "score": self.score,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "wall_s": self.wall_s,
            "error": self.error,
            "worker": self.worker,
        }


@dataclass(frozen=True)
class ControlRecord:
    """The control's row; status reads `interrupted` when its process died."""

    run_id: int
    status: str
    samples: int
    targets: tuple[int, ...]
    device: str
    evaluator: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str
    wall_s: float
    progress: ControlProgress = field(default_factory=ControlProgress)  # a dict given here is read as one

    def __post_init__(self) -> None:
        if not isinstance(self.progress, ControlProgress):
            object.__setattr__(self, "progress", ControlProgress.from_dict(self.progress))

    @property
    def planned(self) -> int:
        return self.samples * len(self.targets)

    def to_dict(self) -> dict:
        return {
            k: (list(v) if k == "targets" else v.to_dict() if k == "progress" else v) for k, v in self.__dict__.items()
        }


def claim_control(store: Store, run_id: int, samples: int, targets: list[int], device: str) -> None:
    """Start (or resume, or extend) the control of `run_id` in this process: one atomic check and
    write, so of two processes claiming it one wins and the other gets one StoreError line."""
    require_write("running a random control")
    now = time.time()
    with store.transaction() as con:
        if con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
            raise StoreError(f"unknown run {run_id} in {store.path}")
        row = con.execute("SELECT * FROM controls WHERE run_id=?", (run_id,)).fetchone()
        if row is not None and effective_status(row) in (RunStatus.RUNNING, RunStatus.QUEUED):
            raise StoreError(f"the control of run {run_id} is already running (pid {row['pid']} on {row['host']})")
        con.execute(
            "INSERT INTO controls (run_id, status, samples, targets, device, created_at, started_at, heartbeat, pid,"
            " host) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id) DO UPDATE SET status=excluded.status,"
            " samples=excluded.samples, targets=excluded.targets, device=excluded.device,"
            " heartbeat=excluded.heartbeat, pid=excluded.pid, host=excluded.host, error='', finished_at=NULL,"
            " stop_requested=0, progress='{}'",
            (
                run_id,
                RunStatus.RUNNING,
                samples,
                json.dumps(list(targets)),
                device,
                now,
                now,
                now,
                os.getpid(),
                socket.gethostname(),
            ),
        )


def check_control_startable(store: Store, run_id: int) -> None:
    """The early, friendly refusal (one line) when the control is already running elsewhere."""
    control = get_control(store, run_id)
    if control is not None and control.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        raise StoreError(f"the control of run {run_id} is already running")


def set_control_evaluator(store: Store, run_id: int, evaluator: str) -> None:
    with store.transaction() as con:
        con.execute("UPDATE controls SET evaluator=? WHERE run_id=?", (evaluator, run_id))


def beat_control(store: Store, run_id: int, progress: ControlProgress) -> None:
    """Heartbeat and live progress (cell i of n, the cell in training), for pages that follow it."""
    lifecycle.beat(store.path, CONTROLS, run_id, progress.to_dict())


def commit_control_cell(store: Store, run_id: int, cell: ControlCell) -> None:
    """One trained cell, in its own transaction (with a heartbeat)."""
    with store.transaction() as con:
        _insert_cells(con, run_id, [cell])
        lifecycle.touch(con, CONTROLS, run_id)


def finish_control(store: Store, run_id: int, status: str, error: str, added_s: float) -> None:
    """End this session of the control; `added_s` (its wall time) adds to the control's total."""
    lifecycle.finish(
        store.path, CONTROLS, run_id, status, error, clear_progress=True, add={"wall_s": round(added_s, 3)}
    )


def request_control_stop(store: Store, run_id: int) -> None:
    """Ask the process training the control (any process) to stop after the current batch."""
    lifecycle.request_stop(store.path, CONTROLS, run_id)


def control_stop_requested(store: Store, run_id: int) -> bool:
    return lifecycle.stop_requested(store.path, CONTROLS, run_id)


def get_control(store: Store, run_id: int) -> ControlRecord | None:
    """The control of `run_id`, or None when it never had one."""
    with store.connect() as con:
        row = con.execute("SELECT * FROM controls WHERE run_id=?", (run_id,)).fetchone()
    if row is None:
        return None
    return ControlRecord(
        run_id=row["run_id"],
        status=effective_status(row),
        samples=row["samples"],
        targets=tuple(json.loads(row["targets"])),
        device=row["device"],
        evaluator=row["evaluator"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        wall_s=row["wall_s"],
        progress=json.loads(row["progress"] or "{}"),
    )


def control_cells(store: Store, run_id: int) -> list[ControlCell]:
    """Every committed cell of the control, by count (largest first) then sample."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT * FROM control_cells WHERE run_id=? ORDER BY target DESC, sample", (run_id,)
        ).fetchall()
    return [
        ControlCell(
            target=r["target"], sample=r["sample"], genotype=Genotype.from_json(r["genotype"]), **result_fields(r)
        )
        for r in rows
    ]


def control_inserter(control: dict | None, cells: list[ControlCell]):
    """For Store.insert_run (bundle import): writes a finished control and its cells in the same
    transaction as the run, so an import is still all or nothing. None when there is no control."""
    if not control:
        return None

    def insert(con: sqlite3.Connection, run_id: int) -> None:
        con.execute(
            "INSERT INTO controls (run_id, status, samples, targets, device, evaluator, created_at, started_at,"
            " finished_at, error, wall_s) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                control.get("status") or RunStatus.FINISHED,
                control["samples"],
                json.dumps(list(control["targets"])),
                control.get("device", ""),
                control.get("evaluator", ""),
                control["created_at"],
                control.get("started_at"),
                control.get("finished_at"),
                control.get("error", ""),
                control.get("wall_s", 0.0),
            ),
        )
        _insert_cells(con, run_id, cells)

    return insert


def _insert_cells(con: sqlite3.Connection, run_id: int, cells: list[ControlCell]) -> None:
    con.executemany(
        f"INSERT INTO control_cells ({', '.join(CELL_COLUMNS)}) VALUES ({', '.join('?' * len(CELL_COLUMNS))})",
        [(run_id, c.target, c.sample, c.genotype.to_json(), *result_values(c), time.time()) for c in cells],
    )


def delete_control(con: sqlite3.Connection, run_id: int | None) -> None:
    """Inside an admin transaction: a run's control (run_id) or every control (None)."""
    for table in ("control_cells", "controls"):
        if run_id is None:
            con.execute(f"DELETE FROM {table}")
        else:
            con.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
