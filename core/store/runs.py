"""The run store: SQLite (WAL) holding runs, their steps and every candidate trained.

The database is the source of truth: the search writes, every other reader (the app in
another thread or process, the CLI) only reads. Steps and candidates are immutable rows
written together in one transaction per step, so a killed process loses at most the step
in progress and a resume continues from the last committed one. Only the run row changes
(status, heartbeat, live progress).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path

from core.cell.genotype import Genotype
from core.result import CandidateStatus
from core.store import lifecycle
from core.store.access import require_write
from core.store.connection import StoreError, connect, open_store_file, transaction
from core.store.lifecycle import RUNS, RunStatus
from core.store.progress import SearchProgress

DEFAULT_STORE = Path("runs") / "autoshrink.db"
VOCAB_SIZE = "vocab_size"  # the key in a run's meta that holds an RNN run's vocabulary size


def default_store_path() -> Path:
    """`AUTOSHRINK_STORE` wins over the default `runs/autoshrink.db`."""
    return Path(os.environ.get("AUTOSHRINK_STORE") or DEFAULT_STORE)


def _edge_json(edge) -> str | None:
    return None if edge is None else json.dumps(list(edge))


def _edge_load(text: str | None) -> tuple[int, int] | None:
    return None if text is None else tuple(json.loads(text))


# What one training wrote, as candidates and control cells store it: the same columns in both.
RESULT_COLUMNS = (
    "status",
    "accuracy",
    "perplexity",
    "macs",
    "flops",
    "params",
    "score",
    "epochs",
    "stop_reason",
    "wall_s",
    "error",
    "history",
    "worker",
)


def result_values(rec, columns: tuple[str, ...] = RESULT_COLUMNS) -> tuple:
    """A record's trained-result values for `columns`, in order (history as JSON)."""
    return tuple(json.dumps(list(rec.history)) if c == "history" else getattr(rec, c) for c in columns)


IMPORTED = RESULT_COLUMNS[:-1]  # an imported candidate keeps no worker label (not this cluster's)


def result_fields(row: sqlite3.Row) -> dict:
    """The trained-result fields of a stored row, for a record's constructor."""
    return {c: tuple(json.loads(row["history"])) if c == "history" else row[c] for c in RESULT_COLUMNS}


MEASURES = ("accuracy", "perplexity", "macs", "flops", "params")  # the Measures fields, as stored


@dataclass(frozen=True, kw_only=True)
class Measures:
    """What a trained cell measured, for a candidate, a step's snapshot and a control cell alike:
    quality (accuracy for a CNN, perplexity for an RNN) and cost. Keyword-only, so each record
    keeps its own positional fields first."""

    accuracy: float | None = None
    perplexity: float | None = None
    macs: int | None = None
    flops: int | None = None
    params: int | None = None

    def measures(self) -> dict:
        return {k: getattr(self, k) for k in MEASURES}


@dataclass(frozen=True, kw_only=True)
class TrainedFields(Measures):
    """The stored outcome of one training (RESULT_COLUMNS but the status), shared by the search's
    candidates and the random control's cells."""

    score: float | None = None
    epochs: int = 0
    stop_reason: str = ""
    wall_s: float = 0.0
    error: str = ""
    history: tuple = ()
    worker: str = ""  # the node (and GPU) that trained it; '' when trained in the driver

    def trained(self) -> dict:
        """These fields by name, to carry one training's outcome into another record."""
        return {f.name: getattr(self, f.name) for f in fields(TrainedFields)}


@dataclass(frozen=True)
class CandidateRecord(TrainedFields):
    step: int
    idx: int
    edge: tuple[int, int] | None  # None for the step-0 baseline (the dense DAG itself)
    genotype: Genotype
    status: CandidateStatus

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CandidateStatus(self.status))

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "idx": self.idx,
            "edge": None if self.edge is None else list(self.edge),
            **self.measures(),
            "score": self.score,
            "status": self.status,
            "epochs": self.epochs,
            "stop_reason": self.stop_reason,
            "wall_s": self.wall_s,
            "error": self.error,
            "edges_left": self.genotype.num_edges,
            "worker": self.worker,
        }


@dataclass(frozen=True)
class StepRecord(Measures):
    step: int
    edges: int
    removed: tuple[int, int] | None
    genotype: Genotype
    score: float | None
    wall_s: float = 0.0
    created_at: float = 0.0

    @classmethod
    def from_candidate(cls, step: int, best: CandidateRecord, wall_s: float) -> "StepRecord":
        """The snapshot a step keeps: its chosen candidate's cell and figures (the search loop,
        the fake runs of the tests and the page benchmark all record a step this one way)."""
        return cls(
            step=step,
            edges=best.genotype.num_edges,
            removed=best.edge,
            genotype=best.genotype,
            score=best.score,
            wall_s=wall_s,
            **best.measures(),
        )

    def to_dict(self) -> dict:
        return {
            "step": self.step,
            "edges": self.edges,
            "removed": None if self.removed is None else list(self.removed),
            "genotype": self.genotype.to_dict(),
            "score": self.score,
            **self.measures(),
            "wall_s": self.wall_s,
        }


@dataclass(frozen=True)
class RunRecord:
    id: int
    task: str
    status: RunStatus
    config: dict
    device: str
    evaluator: str
    expected_steps: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat: float | None
    pid: int | None
    host: str | None
    error: str
    progress: SearchProgress = field(default_factory=SearchProgress)  # a dict given here is read as one
    cluster: dict = field(default_factory=dict)  # the Ray cluster it ran on: nodes, cpus, gpus
    name: str = ""  # given by the instructor (core.store.admin.rename_run); '' = none
    noise: dict = field(default_factory=dict)  # {"metric", "std", "seeds", ...} measured at step 0
    meta: dict = field(default_factory=dict)  # provenance: command, imported bundle, sample

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RunStatus(self.status))
        if not isinstance(self.progress, SearchProgress):
            object.__setattr__(self, "progress", SearchProgress.from_dict(self.progress))

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "progress": self.progress.to_dict()}

    @property
    def vocab_size(self) -> int | None:
        """The vocabulary of an RNN run's corpus, recorded when the search loaded it; None for a CNN
        run and for runs recorded before it was kept (core.insight.compare.lm_vocab falls back), and
        for a meta value that is no size at all (an imported bundle's meta is anyone's)."""
        size = self.meta.get(VOCAB_SIZE)
        return size if isinstance(size, int) and not isinstance(size, bool) and size >= 2 else None


def _step_record(r: sqlite3.Row) -> StepRecord:
    fields = {k: r[k] for k in ("step", "edges", "score", "wall_s", "created_at", *MEASURES)}
    return StepRecord(removed=_edge_load(r["removed"]), genotype=Genotype.from_json(r["genotype"]), **fields)


def _candidate_record(r: sqlite3.Row) -> CandidateRecord:
    return CandidateRecord(
        step=r["step"],
        idx=r["idx"],
        edge=_edge_load(r["edge"]),
        genotype=Genotype.from_json(r["genotype"]),
        **result_fields(r),
    )


def _insert_imported_run(con: sqlite3.Connection, run: dict) -> int:
    """The runs row of an imported run (its heartbeat is its finish time); returns its new id."""
    cur = con.execute(
        "INSERT INTO runs (task, status, config, device, evaluator, expected_steps, created_at,"
        " started_at, finished_at, heartbeat, error, noise, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            run["task"],
            run["status"],
            json.dumps(run["config"]),
            run.get("device", ""),
            run.get("evaluator", ""),
            run.get("expected_steps", 0),
            run["created_at"],
            run.get("started_at"),
            run.get("finished_at"),
            run.get("finished_at"),
            run.get("error", ""),
            json.dumps(run.get("noise") or {}),
            json.dumps(run.get("meta") or {}),
        ),
    )
    return int(cur.lastrowid)


def _insert_steps(
    con: sqlite3.Connection, run_id: int, steps: list[StepRecord], created_at: float | None = None
) -> None:
    """Step rows, stamped `created_at` (a step committed now) or each its own (an imported one)."""
    con.executemany(
        "INSERT INTO steps (run_id, step, edges, removed, genotype, score, accuracy, perplexity,"
        " macs, flops, params, wall_s, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                run_id,
                s.step,
                s.edges,
                _edge_json(s.removed),
                s.genotype.to_json(),
                s.score,
                s.accuracy,
                s.perplexity,
                s.macs,
                s.flops,
                s.params,
                s.wall_s,
                s.created_at if created_at is None else created_at,
            )
            for s in steps
        ],
    )


def _insert_candidates(
    con: sqlite3.Connection, run_id: int, candidates: list[CandidateRecord], columns: tuple[str, ...]
) -> None:
    """Candidate rows with the trained-result `columns` (an imported one keeps no worker)."""
    con.executemany(
        f"INSERT INTO candidates (run_id, step, idx, edge, genotype, {', '.join(columns)})"
        f" VALUES ({','.join('?' * (5 + len(columns)))})",
        [
            (run_id, c.step, c.idx, _edge_json(c.edge), c.genotype.to_json(), *result_values(c, columns))
            for c in candidates
        ],
    )


class Store:
    """Thin typed access to the database; one short-lived connection per operation.

    A connection per call keeps the store safe to share between the search thread and
    UI threads (sqlite3 connections are not), and WAL lets readers in other processes
    read while a step is being written.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_store_path()
        open_store_file(self.path)

    def connect(self) -> AbstractContextManager[sqlite3.Connection]:
        """A short-lived connection to this store's file (core.store.connection.connect)."""
        return connect(self.path)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One IMMEDIATE write transaction on this store's file (core.store.connection.transaction)."""
        return transaction(self.path)

    # ----- runs ------------------------------------------------------------------------
    def create_run(self, task: str, config: dict, expected_steps: int, status: str = RunStatus.QUEUED) -> int:
        """A queued run owned by this process (pid, host) until it claims it: a `resume` from
        elsewhere meanwhile is refused, and if this process dies first the run reads interrupted."""
        require_write("starting a search")
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO runs (task, status, config, expected_steps, created_at, pid, host) VALUES (?,?,?,?,?,?,?)",
                (task, status, json.dumps(config), expected_steps, time.time(), os.getpid(), socket.gethostname()),
            )
            return int(cur.lastrowid)

    # ----- the run's lifecycle (core.store.lifecycle, shared with jobs and controls) ------
    def claim(self, run_id: int, device: str, evaluator: str) -> None:
        lifecycle.claim(self.path, RUNS, run_id, device, evaluator=evaluator)

    def set_cluster(self, run_id: int, cluster: dict) -> None:
        """The cluster a run's candidates train on (the ray evaluator); {} for a local run."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET cluster=? WHERE id=?", (json.dumps(cluster), run_id))

    def beat(self, run_id: int, progress: SearchProgress) -> None:
        lifecycle.beat(self.path, RUNS, run_id, progress.to_dict())

    def request_stop(self, run_id: int) -> None:
        self.get_run(run_id)
        lifecycle.request_stop(self.path, RUNS, run_id)

    def stop_requested(self, run_id: int) -> bool:
        return lifecycle.stop_requested(self.path, RUNS, run_id)

    def finish(self, run_id: int, status: str, error: str = "") -> None:
        lifecycle.finish(self.path, RUNS, run_id, status, error, clear_progress=True)

    def set_noise(self, run_id: int, noise: dict) -> None:
        """Record the noise measured at step 0 (see core.search.noise)."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET noise=? WHERE id=?", (json.dumps(noise), run_id))

    def record_vocab_size(self, run_id: int, size: int) -> None:
        """Keep the vocabulary size of the corpus an RNN search loaded, in its meta (so a bundle
        carries it too); the rest of the meta is kept."""
        with self.transaction() as con:
            row = con.execute("SELECT meta FROM runs WHERE id=?", (run_id,)).fetchone()
            meta = {**json.loads(row["meta"] or "{}"), VOCAB_SIZE: int(size)}
            con.execute("UPDATE runs SET meta=? WHERE id=?", (json.dumps(meta), run_id))

    def set_meta(self, run_id: int, meta: dict) -> None:
        """Record how a run was made (the command line) or where it was imported from."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET meta=? WHERE id=?", (json.dumps(meta), run_id))

    def get_run(self, run_id: int) -> RunRecord:
        with self.connect() as con:
            row = con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"unknown run {run_id} in {self.path}")
        return self._run(row)

    def list_runs(self) -> list[RunRecord]:
        return [self._run(r) for r in self.select("SELECT * FROM runs ORDER BY id DESC")]

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"],
            task=row["task"],
            config=json.loads(row["config"]),
            device=row["device"],
            evaluator=row["evaluator"],
            expected_steps=row["expected_steps"],
            cluster=json.loads(row["cluster"] or "{}"),
            name=row["name"],
            noise=json.loads(row["noise"] or "{}"),
            meta=json.loads(row["meta"] or "{}"),
            **lifecycle.record_fields(row),
        )

    def check_resumable(self, run_id: int) -> None:
        """Refuse (one line) to resume a finished run or one that a live process holds; the
        claim itself checks again, atomically, so this is only the early, friendly answer."""
        lifecycle.check_claimable(self.path, RUNS, run_id)

    def set_evaluator(self, run_id: int, evaluator: str) -> None:
        """The evaluator is known once the task is built, which is after the claim."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET evaluator=? WHERE id=?", (evaluator, run_id))

    # ----- steps and candidates ---------------------------------------------------------
    def commit_step(self, run_id: int, step: StepRecord, candidates: list[CandidateRecord]) -> None:
        """Write a step and all its candidates atomically: all of it or none of it."""
        with self.transaction() as con:
            _insert_steps(con, run_id, [step], created_at=time.time())
            _insert_candidates(con, run_id, candidates, RESULT_COLUMNS)
            lifecycle.touch(con, RUNS, run_id)

    def insert_run(self, run: dict, steps: list[StepRecord], candidates: list[CandidateRecord], also=None) -> int:
        """Add a whole finished (or stopped) run under a new id in one transaction: all or nothing.

        For imported bundles; `run` holds the runs-table fields (task, status, config, ...);
        `also(con, run_id)` writes more rows of the run (its control) in the same transaction.
        Refused in view-only mode: an import would put any run, name and note in front of a class.
        """
        require_write("importing a run bundle")
        with self.transaction() as con:
            run_id = _insert_imported_run(con, run)
            _insert_steps(con, run_id, steps)
            _insert_candidates(con, run_id, candidates, IMPORTED)
            if also is not None:
                also(con, run_id)
            return run_id

    def select(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        """The rows of one read query, in a connection of their own."""
        with self.connect() as con:
            return con.execute(sql, args).fetchall()

    def steps(self, run_id: int) -> list[StepRecord]:
        rows = self.select("SELECT * FROM steps WHERE run_id=? ORDER BY step", (run_id,))
        return [_step_record(r) for r in rows]

    def candidates(self, run_id: int, step: int | None = None) -> list[CandidateRecord]:
        sql, args = "SELECT * FROM candidates WHERE run_id=?", [run_id]
        if step is not None:
            sql, args = sql + " AND step=?", args + [step]
        return [_candidate_record(r) for r in self.select(sql + " ORDER BY step, idx", args)]

    def best_step(self, run_id: int) -> StepRecord | None:
        """The snapshot with the best score along the trajectory (ties: fewer edges)."""
        return best_of(self.steps(run_id))


def best_of(steps: list[StepRecord]) -> StepRecord | None:
    """The result of a search: the best-scoring snapshot among steps >= 1 (ties: fewer edges).
    Step 0, the dense DAG, is a reference row only: the official search never trains, scores
    or saves it, so it can never be the result (docs/FIDELITY.md, "selection")."""
    scored = [s for s in steps if s.step >= 1 and s.score is not None and s.score == s.score]
    if not scored:
        return None
    return max(scored, key=lambda s: (s.score, -s.edges))
