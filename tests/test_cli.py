"""`python -m core` as a user runs it: JSON outputs, one-line errors, kill -9 and resume."""

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import count_rows, kill_9_when, run_cli, run_main

from core.store.runs import Store

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--nodes", "4", "--k", "2", "--epochs", "1", "--keep-fraction", "0", "--threads", "1", "--control", "0"]


cli = run_cli


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["search", "cnn", "--k", "zero"], "invalid int value"),
        (["search", "cnn", "--nodes", "40"], "nodes must be in 2..16"),
        (["search", "gan"], "invalid choice"),
        (["show", "99"], "unknown run 99"),
        (["resume", "99"], "unknown run 99"),
        (["summary", "preset:nope"], "unknown preset 'nope'"),
        (["summary", "/no/such/file.json"], "/no/such/file.json"),
    ],
)
def test_user_errors_are_one_line_without_traceback(store_path, capsys, args, fragment):
    store = ["--store", store_path] if args[0] != "summary" else []
    code, _, err = run_main(capsys, *args, *store)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err


def test_the_console_ends_a_user_error_with_that_one_line_and_exit_2(store_path):
    """The same error through `python -m core` itself (the cases above run main() in-process)."""
    out = cli("show", 99, "--store", store_path, check=False)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"error: unknown run 99 in {store_path}"]


def test_search_show_export_json(store_path, tmp_path, capsys):
    """The search as a user runs it (its progress bar on stderr); then show, export and runs."""
    out = cli("search", "cnn", *TINY, "--max-steps", "2", "--store", store_path, "--json")
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["status"] == "finished" and final["run_id"] == 1
    shown = json.loads(run_main(capsys, "show", 1, "--store", store_path, "--json")[1])
    assert set(shown) == {"run", "steps", "control"} and len(shown["steps"]) == 3
    assert shown["control"] is None  # --control 0: no random control (tests/test_control.py has them)
    step = shown["steps"][1]
    assert {"step", "edges", "removed", "genotype", "score", "candidates"} <= set(step)
    assert {"edge", "accuracy", "macs", "params", "score", "status"} <= set(step["candidates"][0])
    history = step["candidates"][0]["history"]  # per-epoch curves of each candidate
    assert [row["epoch"] for row in history] == [1]
    assert {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc"} <= set(history[0])
    assert shown["run"]["best_step"] >= 1  # the dense baseline is never the result
    assert run_main(capsys, "export", 1, "--step", 1, "--out", tmp_path / "g.json", "--store", store_path)[0] == 0
    exported = json.loads((tmp_path / "g.json").read_text())
    assert exported["edges"] == step["genotype"]["edges"]
    assert json.loads(run_main(capsys, "runs", "--store", store_path, "--json")[1])[0]["status"] == "finished"
    bar = [line for line in out.stderr.splitlines() if line.startswith("[")]  # the progress bar's lines
    assert "100.0%" in bar[-1] and "finished: 3 steps" in bar[-1], out.stderr


def test_progress_bar_of_a_search_that_finishes_early_ends_at_100_percent():
    """Pruning can end a search before its expected step count (the demo: 3 of 5 steps); the
    bar's last line must then still say 100 % and finished, and a stopped run keeps its place."""
    from core.cli.main import _ProgressObserver

    def bar_text(status: str) -> str:
        obs = _ProgressObserver(expected_steps=5, done_steps=0, quiet=True)
        obs.bar.stream = io.StringIO()  # not a terminal: plain lines
        for n in range(3):
            obs.on_step(1, SimpleNamespace(step=n, edges=10 - 2 * n), [])
        obs.on_end(1, status, "")
        return obs.bar.stream.getvalue()

    last = bar_text("finished").strip().splitlines()[-1]
    assert "100.0%" in last and "finished: 3 steps" in last and "ETA 0s" in last
    assert "100.0%" not in bar_text("stopped") and "finished" not in bar_text("stopped")


def test_dry_run_prints_settings_and_starting_cell_without_training(store_path, capsys):
    code, stdout, _ = run_main(capsys, "search", "rnn", "--preset", "paper", "--seed", "3", "--dry-run", "--json",
                               "--store", store_path)  # fmt: skip
    out = json.loads(stdout)
    assert code == 0
    assert out["config"]["data"] == "ptb-proxy" and out["config"]["epochs"] == 10 and out["config"]["seed"] == 3
    assert out["genotype"]["kind"] == "rnn" and len(out["genotype"]["edges"]) == 15
    from core.cell.genotype import Genotype

    assert tuple(out["genotype"]["ops"]) == Genotype.dense("rnn", 6, 3).ops
    assert not Path(store_path).exists()  # nothing created, nothing trained


def test_store_from_environment(tmp_path, capsys, monkeypatch):
    env_store = tmp_path / "env.db"
    monkeypatch.setenv("AUTOSHRINK_STORE", str(env_store))
    code, out, _ = run_main(capsys, "runs")
    assert code == 0 and str(env_store) in out and env_store.exists()


def test_summary_of_shrinkcnn_a_at_imagenet_224(capsys):
    code, stdout, _ = run_main(
        capsys, "summary", "preset:shrinkcnn-a", "--input-size", "224", "--classes", "1001", "--json"
    )
    out = json.loads(stdout)
    assert code == 0
    assert abs(out["params"] - 3.64e6) / 3.64e6 < 0.02
    assert abs(out["macs"] - 383.7e6) / 383.7e6 < 0.03


def test_resume_after_kill_9_continues_from_the_last_committed_step(store_path, capsys):
    short = ["--nodes", "5", "--max-steps", "4"]  # 4 of the 10 steps: enough to kill after 2 and resume
    args = [sys.executable, "-m", "core", "search", "cnn", *TINY, *short, "--store", str(store_path)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_9_when(proc, lambda: store_path.exists() and _steps(store_path) >= 2, "the search", 240)
    store = Store(store_path)
    before = [(s.step, s.removed) for s in store.steps(1)]
    assert store.get_run(1).status == "interrupted" and len(before) >= 2
    assert run_main(capsys, "resume", 1, "--store", store_path)[0] == 0
    after = [(s.step, s.removed) for s in store.steps(1)]
    assert store.get_run(1).status == "finished"
    assert [s for s, _ in after] == list(range(len(after)))  # contiguous, none repeated
    assert after[: len(before)] == before  # nothing committed was lost or redone
    # the resumed run made exactly the choices an uninterrupted run makes
    assert run_main(capsys, "search", "cnn", *TINY, *short, "--store", store_path)[0] == 0
    assert [(s.step, s.removed) for s in store.steps(2)] == after


def _steps(path: Path) -> int:
    return count_rows(path, "SELECT COUNT(*) FROM steps WHERE run_id=1")
