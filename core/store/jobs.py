"""Final-training jobs in the run store: one `jobs` row per job, one `job_epochs` row per epoch.

The tables live in the same SQLite file as the searches, so the app, the CLI and Compare
read one place. The rules mirror the search's: only the job row changes (status, heartbeat,
live progress, final metrics); epoch rows are immutable (triggers refuse UPDATE and DELETE),
written once after the epoch's checkpoint is safely on disk. A killed job therefore loses at
most the epoch in progress, and a resume continues from the last checkpoint.

Checkpoints and exports live beside the store, in <store>.jobs/<id>/ (see JobStore.job_dir).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.cell.genotype import Genotype
from core.store import lifecycle
from core.store.access import require_write
from core.store.connection import StoreError
from core.store.lifecycle import JOBS, RunStatus
from core.store.progress import JobProgress
from core.store.runs import Store

FILES_BESIDE_STORE, FILES_LEGACY = "store.jobs", "legacy"  # jobs.files: where a job keeps its files
EPOCH_COLUMNS = (
    "train_loss",
    "train_acc",
    "train_ppl",
    "val_loss",
    "val_acc",
    "val_ppl",
    "lr",
    "throughput",
    "seconds",
)


@dataclass(frozen=True)
class EpochRecord:
    """One completed epoch; `extra` holds task-specific values (e.g. which optimizer ran)."""

    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    train_ppl: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    val_ppl: float | None = None
    lr: float | None = None
    throughput: float | None = None
    seconds: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, **{c: getattr(self, c) for c in EPOCH_COLUMNS}, **self.extra}

    @classmethod
    def from_row(cls, row: dict) -> "EpochRecord":
        """From a trainer's history row: known columns by name, the rest kept in `extra`."""
        known = {c: _num(row.get(c)) for c in EPOCH_COLUMNS}
        extra = {k: v for k, v in row.items() if k not in EPOCH_COLUMNS and k != "epoch"}
        return cls(epoch=int(row["epoch"]), extra=extra, **known)


@dataclass(frozen=True)
class JobRecord:
    id: int
    task: str
    status: RunStatus
    name: str
    source: str
    genotype: Genotype
    config: dict
    device: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat: float | None
    pid: int | None
    host: str | None
    error: str
    progress: JobProgress = field(default_factory=JobProgress)  # a dict given here is read as one
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))
        if not isinstance(self.progress, JobProgress):
            object.__setattr__(self, "progress", JobProgress.from_dict(self.progress))

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["genotype"], d["progress"] = self.genotype.to_dict(), self.progress.to_dict()
        return d


def _num(value: object) -> float | None:
    """REAL columns take floats or NULL (numpy/torch scalars are cast; SQLite keeps NaN as NULL)."""
    return None if value is None else float(value)  # type: ignore[arg-type]


class JobStore(Store):
    """The run store seen through its final-training tables (every store has them)."""

    def job_dir(self, job_id: int) -> Path:
        """Where the job's checkpoint and exports live: <store>.jobs/<id>/, beside the store file
        and named after it, so two stores in one folder never share a job's files.

        Jobs created before that layout (`files` = 'legacy') keep using <store dir>/jobs/<id>/
        where it exists, so their checkpoints still resume."""
        store = self.path.resolve()
        with self.connect() as con:
            row = con.execute("SELECT files FROM jobs WHERE id=?", (job_id,)).fetchone()
        legacy = store.parent / "jobs" / str(job_id)
        if row is not None and row[0] == FILES_LEGACY and legacy.is_dir():
            return legacy
        return store.parent / f"{store.name}.jobs" / str(job_id)

    # ----- the job row --------------------------------------------------------------------
    def create_job(self, task: str, genotype: Genotype, config: dict, source: str = "", name: str = "") -> int:
        require_write("starting a training job")
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO jobs (task, status, name, source, genotype, config, created_at, pid, host, files)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    task,
                    RunStatus.QUEUED,
                    name,
                    source,
                    genotype.to_json(),
                    json.dumps(config),
                    time.time(),
                    os.getpid(),
                    socket.gethostname(),
                    FILES_BESIDE_STORE,
                ),
            )
            return int(cur.lastrowid)

    def claim_job(self, job_id: int, device: str) -> None:
        lifecycle.claim(self.path, JOBS, job_id, device)

    def check_job_resumable(self, job_id: int) -> None:
        """One line if the job is finished or held by a live process (the claim checks again)."""
        lifecycle.check_claimable(self.path, JOBS, job_id)

    def beat_job(self, job_id: int, progress: JobProgress) -> None:
        lifecycle.beat(self.path, JOBS, job_id, progress.to_dict())

    def request_job_stop(self, job_id: int) -> None:
        self.get_job(job_id)
        lifecycle.request_stop(self.path, JOBS, job_id)

    def job_stop_requested(self, job_id: int) -> bool:
        return lifecycle.stop_requested(self.path, JOBS, job_id)

    def finish_job(self, job_id: int, status: str, error: str = "", metrics: dict | None = None) -> None:
        """Final status; metrics (when given) replace the job's summary, else it is kept."""
        values = None if metrics is None else {"metrics": json.dumps(metrics)}
        lifecycle.finish(self.path, JOBS, job_id, status, error, values=values)

    def get_job(self, job_id: int) -> JobRecord:
        with self.connect() as con:
            row = con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise StoreError(f"unknown training job {job_id} in {self.path}")
        return self._job(row)

    def list_jobs(self, task: str | None = None) -> list[JobRecord]:
        sql, args = "SELECT * FROM jobs", []
        if task is not None:
            sql, args = sql + " WHERE task=?", [task]
        return [self._job(r) for r in self.select(sql + " ORDER BY id DESC", args)]

    @staticmethod
    def _job(row) -> JobRecord:
        return JobRecord(
            id=row["id"],
            task=row["task"],
            name=row["name"],
            source=row["source"],
            genotype=Genotype.from_json(row["genotype"]),
            config=json.loads(row["config"]),
            device=row["device"],
            metrics=json.loads(row["metrics"] or "{}"),
            **lifecycle.record_fields(row),
        )

    # ----- epoch rows -----------------------------------------------------------------------
    def add_epochs(self, job_id: int, records: list[EpochRecord]) -> None:
        """Insert epoch rows (one transaction); an epoch already recorded is a StoreError."""
        if not records:
            return
        now = time.time()
        try:
            with self.transaction() as con:
                con.executemany(
                    f"INSERT INTO job_epochs (job_id, epoch, {', '.join(EPOCH_COLUMNS)}, extra, created_at)"
                    f" VALUES (?,?,{','.join('?' * len(EPOCH_COLUMNS))},?,?)",
                    [
                        (job_id, r.epoch, *[getattr(r, c) for c in EPOCH_COLUMNS], json.dumps(r.extra), now)
                        for r in records
                    ],
                )
                lifecycle.touch(con, JOBS, job_id, now)
        except Exception as exc:
            if "UNIQUE" in str(exc):
                raise StoreError(f"job {job_id}: epoch {records[0].epoch} is already recorded") from None
            raise

    def epochs(self, job_id: int) -> list[EpochRecord]:
        rows = self.select("SELECT * FROM job_epochs WHERE job_id=? ORDER BY epoch", (job_id,))
        return [
            EpochRecord(epoch=r["epoch"], extra=json.loads(r["extra"] or "{}"), **{c: r[c] for c in EPOCH_COLUMNS})
            for r in rows
        ]
