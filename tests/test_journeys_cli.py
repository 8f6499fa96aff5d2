"""Journeys: every command of the README's "Command line" block, run end to end on a fresh store.

The commands are read from README.md, so an edit there is tested here. They run as written,
in the README's order, on one store, with only these changes:
- placeholders become real things: `/data/...` the ../shared copies, run `3` the run this
  journey made first, `--step 5` that run's last step, job `2` the second job, `cell.json` /
  `run3.json.gz` / `S` files in a temporary folder;
- long commands are scaled down with documented flags only (`--k`, `--epochs`, `--max-steps`,
  `--max-batches`), appended so the README's own flags still parse (the first search is cut
  to two steps, so that `resume` has one left);
- the first search and the second training job are stopped with Ctrl-C after their first
  step / epoch, so that the README's `resume 3` and `train --resume 2` have something to
  resume (the README documents that journey too);
- a command that names `--device cuda` must refuse in one line on a machine without CUDA.
Optional parts in brackets run both ways: without them, and with all of them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CIFAR = SHARED / "cifar10" / "cifar-10-batches-py"
PTB = SHARED / "ptb-proxy"
SCALE_SEARCH = ["--k", "2", "--epochs", "1", "--max-steps", "1", "--max-batches", "2"]
SCALE_INTERRUPTED = ["--max-steps", "2"]  # Ctrl-C'd after step 1: `resume` then trains one step
SCALE_TRAIN = ["--epochs", "1", "--max-batches", "2"]
SCALE_TRAIN_RESUMED = ["--epochs", "2", "--max-batches", "2"]
TIMEOUT = 300
EXIT_INTERRUPTED, EXIT_USER = 130, 2


def readme_commands() -> list[str]:
    """The `python -m core ...` lines of the README's "Command line" block, comments cut."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split(" #", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("python -m core ")]


def variants(command: str) -> list[list[str]]:
    """Without its [optional] parts, and (when it has some) with all of them."""
    bare = re.sub(r"\s*\[[^\]]*\]", "", command)
    full = re.sub(r"\[([^\]]*)\]", r"\1", command)
    out = [shlex.split(bare)[3:]]
    if full != bare:
        out.append(shlex.split(full)[3:])
    return out


class Journey:
    """One fresh store and the README's placeholders mapped onto what the journey made."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.db = tmp, tmp / "runs.db"
        self.env = {**os.environ, "AUTOSHRINK_STORE": str(self.db), "PYTHONUNBUFFERED": "1"}
        self.files = {"cell.json": tmp / "cell.json", "run3.json.gz": tmp / "run3.json.gz", "S": tmp / "other.db"}
        self.times: list[tuple[str, float]] = []

    def concrete(self, args: list[str]) -> list[str]:
        out = []
        for i, a in enumerate(args):
            prev = args[i - 1] if i else ""
            if a.startswith(("cifar10:/data", "ptb-proxy:/data", "ptb:/data")):
                source = a.split(":", 1)[0]
                a = f"{source}:{CIFAR if source == 'cifar10' else PTB}"
            elif a == "3" and prev in ("show", "resume", "control", "export", "export-run"):
                a = "1"  # the journey's first run (the README's run 3)
            elif prev == "--step":
                a = str(self.count("SELECT MAX(step) FROM steps WHERE run_id=1"))  # a step the run has
            elif a == "run:3":
                a = "run:1"
            elif a in self.files:
                a = str(self.files[a])
            out.append(a)
        return out

    def run(self, args: list[str], capsys) -> tuple[int, str, str]:
        """In this process (the console's code path, without paying torch's start-up again)."""
        start = time.time()
        code = main(args)
        out, err = capsys.readouterr()
        self.times.append((" ".join(args), time.time() - start))
        return code, out, err

    def interrupt_after(self, args: list[str], table: str, done_sql: str) -> tuple[int, str]:
        """A real process, Ctrl-C'd once `done_sql` counts a committed row (a step, an epoch)."""
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        end = time.time() + TIMEOUT
        while not self.count(done_sql) and time.time() < end and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, f"{args} ended before it could be interrupted: {proc.stderr.read()}"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        self.times.append((" ".join(args) + "  (Ctrl-C)", time.time() - start))
        return proc.returncode, err

    def count(self, sql: str) -> int:
        if not self.db.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as con:
                return con.execute(sql).fetchone()[0]
        except sqlite3.OperationalError:  # the tables are being made
            return 0

    def status(self, table: str, row_id: int) -> str:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(f"SELECT status FROM {table} WHERE id=?", (row_id,)).fetchone()[0]


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    return lines[-1]


def _check_cuda_refusal(j: Journey, args: list[str], capsys) -> None:
    runs, jobs = j.count("SELECT COUNT(*) FROM runs"), j.count("SELECT COUNT(*) FROM jobs")
    code, _, err = j.run(args, capsys)
    assert code == EXIT_USER and "cuda" in _one_line(err).lower(), err
    assert (j.count("SELECT COUNT(*) FROM runs"), j.count("SELECT COUNT(*) FROM jobs")) == (runs, jobs)


def _step(j: Journey, args: list[str], capsys) -> None:
    """Run one README command and check what a user would look for in its result."""
    sub = args[0]
    cuda_refused = "cuda" in args and not torch.cuda.is_available()
    if cuda_refused:
        return _check_cuda_refusal(j, args, capsys)
    if sub == "search" and "--dry-run" not in args and j.count("SELECT COUNT(*) FROM runs") == 0:
        code, err = j.interrupt_after(
            args + SCALE_INTERRUPTED, "runs", "SELECT COUNT(*) FROM steps WHERE run_id=1 AND step>=1"
        )
        assert code == EXIT_INTERRUPTED and "resume with `resume 1`" in err, err
        assert j.status("runs", 1) == "stopped"
        return None
    if sub == "train" and "--resume" not in args and "--list" not in args and j.count("SELECT COUNT(*) FROM jobs") == 1:
        code, err = j.interrupt_after(
            args + SCALE_TRAIN_RESUMED, "jobs", "SELECT COUNT(*) FROM job_epochs WHERE job_id=2"
        )
        assert code == EXIT_INTERRUPTED and "Traceback" not in err, err
        assert j.status("jobs", 2) == "stopped"
        return None
    scale = SCALE_SEARCH if sub == "search" and "--dry-run" not in args else []
    if sub == "train" and "--resume" not in args and "--list" not in args:
        scale = SCALE_TRAIN
    code, out, err = j.run(args + scale, capsys)
    assert code == 0, f"{args}: {err}"
    _check_result(j, args, out)
    return None


def _check_result(j: Journey, args: list[str], out: str) -> None:
    sub = args[0]
    if "--json" in args and sub not in ("train",):
        json.loads(out.strip().splitlines()[-1])
    if sub == "search" and "--dry-run" in args:
        cfg = json.loads(out)["config"]
        assert cfg["task"] == "rnn" and cfg["data"] == "ptb-proxy" and cfg["nodes"] == 6
    elif sub == "search":
        run_id = j.count("SELECT MAX(id) FROM runs")
        assert j.status("runs", run_id) == "finished"
        assert j.count(f"SELECT COUNT(*) FROM candidates WHERE run_id={run_id} AND step=1") == 2
    elif sub == "control":
        assert j.count("SELECT COUNT(*) FROM control_cells WHERE run_id=1") >= 5
    elif sub == "resume":
        assert j.status("runs", 1) == "finished" and j.count("SELECT MAX(step) FROM steps WHERE run_id=1") >= 2
    elif sub == "export" and "--out" in args:
        cell = json.loads(j.files["cell.json"].read_text())
        assert cell["kind"] == "cnn" and cell["edges"]
    elif sub == "export-run":
        bundle = json.loads(gzip.decompress(j.files["run3.json.gz"].read_bytes()))
        assert bundle["format"] == "autoshrink-run-bundle" and bundle["steps"]
    elif sub == "import-run":
        target = j.files["S"] if "--store" in args else j.db
        with sqlite3.connect(target) as con:
            assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 1
    elif sub == "train" and "--resume" in args:
        assert j.status("jobs", 2) == "finished" and j.count("SELECT COUNT(*) FROM job_epochs WHERE job_id=2") == 2
    elif sub == "train" and "--list" not in args:
        job_id = j.count("SELECT MAX(id) FROM jobs")
        assert j.status("jobs", job_id) == "finished"


def test_the_readme_block_is_found() -> None:
    commands = readme_commands()
    assert len(commands) >= 15, commands
    assert any("search rnn --preset paper" in c for c in commands)


@pytest.mark.skipif(not (CIFAR.is_dir() and PTB.is_dir()), reason="../shared/data (CIFAR-10, PTB proxy) is absent")
def test_every_readme_command_runs_end_to_end(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AUTOSHRINK_STORE", str(tmp_path / "runs.db"))
    j = Journey(tmp_path)
    for command in readme_commands():
        for args in variants(command):
            _step(j, j.concrete(args), capsys)
    with capsys.disabled():
        print("\nREADME journey wall times:")
        for cmd, seconds in j.times:
            print(f"  {seconds:6.1f} s  python -m core {cmd}")
