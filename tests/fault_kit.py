"""What the fault suite (tests/test_faults_*.py) shares: run the CLI, read its one error line,
and check that what the store had committed before a fault is still there after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import run_main

from core.cell.genotype import Genotype
from core.store.runs import CandidateRecord, RunStatus, StepRecord, Store

ROOT = Path(__file__).resolve().parents[1]
# The smallest real search: a 3-node cell (3 edges), 2 candidates, 1 epoch, one step after the baseline.
TINY_SEARCH = [
    "--preset",
    "demo",
    "--nodes",
    "3",
    "--k",
    "2",
    "--epochs",
    "1",
    "--max-steps",
    "1",
    "--threads",
    "1",
    "--control",
    "0",
]  # the control has its own tests (test_control.py)


def cli(capsys, *args: object) -> tuple[int, str]:
    """helpers.run_main, keeping (exit code, stderr): what the fault tests read."""
    code, _, err = run_main(capsys, *args)
    return code, err


def error_line(err: str) -> str:
    """The one `error:` line a user error prints, and no traceback anywhere."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def only_line(err: str) -> str:
    """A refusal before any work starts prints exactly one line in all."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def spawn(*args: object, **kw) -> subprocess.Popen:
    """`python -m core ARGS` as a real process (for signals and for several processes at once)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def committed_run(store: Store) -> int:
    """A finished run with the dense baseline and one shrink step, written directly (no training):
    step 1 is there because the baseline is never a run's result."""
    g = Genotype.dense("cnn", 3, 0, name="kept")
    run_id = store.create_run("cnn", {"seed": 0}, expected_steps=2)
    step = StepRecord(
        step=0, edges=g.num_edges, removed=None, genotype=g, score=0.5, accuracy=0.9, macs=1000, params=10, wall_s=1.0
    )
    store.commit_step(
        run_id, step, [CandidateRecord(0, 0, None, g, "ok", accuracy=0.9, macs=1000, params=10, score=0.5, epochs=1)]
    )
    edge = g.edges[-1]
    shrunk = g.without_edge(edge)
    step1 = StepRecord(
        step=1,
        edges=shrunk.num_edges,
        removed=edge,
        genotype=shrunk,
        score=0.6,
        accuracy=0.9,
        macs=900,
        params=9,
        wall_s=1.0,
    )
    store.commit_step(
        run_id,
        step1,
        [CandidateRecord(1, 0, edge, shrunk, "ok", accuracy=0.9, macs=900, params=9, score=0.6, epochs=1)],
    )
    store.finish(run_id, RunStatus.FINISHED)
    return run_id


def snapshot(store: Store) -> list:
    """Everything committed: runs (id, status) with their steps and candidates."""
    return [
        (r.id, r.status, [s.to_dict() for s in store.steps(r.id)], [c.to_dict() for c in store.candidates(r.id)])
        for r in store.list_runs()
    ]
