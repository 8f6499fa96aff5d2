"""Training jobs in the store, checkpoints, and `python -m core train` as a user runs it,
including kill -9 mid-training and a resume that ends exactly where an uninterrupted run does."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import count_rows, kill_9_when, run_main

from core.cell.genotype import Genotype
from core.cli.main import main
from core.store.jobs import EpochRecord, JobStore
from core.store.runs import RunStatus, Store, StoreError
from core.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
G = Genotype.dense("cnn", 4, seed=0)
TRAIN = ["train", "preset:shrinkcnn-a", "--epochs", "5", "--max-batches", "12", "--no-onnx", "--threads", "1"]


# ----- the store ---------------------------------------------------------------------------------
def test_jobs_share_the_run_store_and_epoch_rows_are_immutable(store_path):
    run_id = Store(store_path).create_run("cnn", {"seed": 1}, expected_steps=3)
    jobs = JobStore(store_path)
    job = jobs.create_job("cnn", G, {"epochs": 2}, source="preset:x", name="cell")
    assert jobs.get_run(run_id).config == {"seed": 1}  # one file, both kinds of rows
    jobs.add_epochs(job, [EpochRecord.from_row({"epoch": 1, "train_loss": 0.5, "val_acc": 0.9, "optimizer": "sgd"})])
    rec = jobs.epochs(job)[0]
    assert (rec.epoch, rec.train_loss, rec.val_acc, rec.extra) == (1, 0.5, 0.9, {"optimizer": "sgd"})
    with pytest.raises(StoreError, match="epoch 1 is already recorded"):
        jobs.add_epochs(job, [EpochRecord(epoch=1)])
    with sqlite3.connect(store_path) as con, pytest.raises(sqlite3.DatabaseError, match="immutable"):
        con.execute("UPDATE job_epochs SET val_acc=0 WHERE job_id=?", (job,))
    with sqlite3.connect(store_path) as con, pytest.raises(sqlite3.DatabaseError, match="immutable"):
        con.execute("DELETE FROM job_epochs")
    assert jobs.job_dir(job) == store_path.resolve().parent / f"{store_path.name}.jobs" / str(job)
    with pytest.raises(StoreError, match="unknown training job 99"):
        jobs.get_job(99)


def test_a_running_job_whose_process_is_gone_reads_as_interrupted(store_path):
    jobs = JobStore(store_path)
    job = jobs.create_job("cnn", G, {})
    jobs.claim_job(job, "cpu")
    assert jobs.get_job(job).status == RunStatus.RUNNING  # this process is alive
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(store_path) as con:
        con.execute("UPDATE jobs SET pid=? WHERE id=?", (int(dead.stdout), job))
    assert jobs.get_job(job).status == RunStatus.INTERRUPTED
    jobs.request_job_stop(job)
    assert jobs.job_stop_requested(job)
    jobs.finish_job(job, "stopped", metrics={"accuracy": 0.5})
    assert jobs.get_job(job).metrics == {"accuracy": 0.5} and jobs.list_jobs("rnn") == []


# ----- checkpoints ------------------------------------------------------------------------------
def test_checkpoint_round_trip_keeps_tensors_and_rng_state(tmp_path):
    state = {
        "w": torch.arange(4.0),
        "rng": {"torch": torch.get_rng_state()},
        "history": [{"epoch": 1, "x": 0.5}],
        "step": 7,
        "phase": "sgd",
        "best": float("inf"),
    }
    save_checkpoint(state, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["w"], state["w"]) and torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert back["history"] == state["history"] and back["step"] == 7 and back["best"] == float("inf")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # the temp file was renamed, not left


def test_checkpoint_state_dataclasses_read_files_written_as_plain_dicts(tmp_path):
    """The state dataclasses write the same keys as the dicts before them, and read an older
    file (every GPU's RNG state under "cuda") as well."""
    from core.training.cnn import CNNState
    from core.training.rnn import RNNState

    rng = torch.get_rng_state()
    old = {
        "model": {"w": torch.ones(2)},
        "optimizer": {"state": {}},
        "rng": {"torch": rng, "cuda": [rng[:4]]},
        "epoch": 3,
        "history": [{"epoch": 1}],
        "phase": "asgd",
        "val_history": [5.0, 4.0],
        "best": 4.0,
    }
    save_checkpoint(old, tmp_path / "c.pt")
    state = RNNState.from_dict(load_checkpoint(tmp_path / "c.pt"))
    assert (state.epoch, state.phase, state.val_history, state.best) == (3, "asgd", [5.0, 4.0], 4.0)
    assert torch.equal(state.rng.torch, rng) and torch.equal(state.rng.cuda_device, rng[:4])
    assert set(state.to_dict()) == set(old) and set(state.to_dict()["rng"]) == {"torch", "cuda_device"}
    cnn = CNNState.from_dict({**old, "scaler": {}, "step": 12})
    assert set(cnn.to_dict()) == {"model", "optimizer", "rng", "epoch", "history", "scaler", "step"}
    assert cnn.step == 12 and cnn.history == [{"epoch": 1}]


def test_checkpoint_write_is_atomic_and_loading_never_unpickles(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"epoch": 1}, path)

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1} and len(list(tmp_path.iterdir())) == 1

    class Planted:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"x": Planted()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


# ----- the CLI ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "preset:shrinkcnn-a", "--bptt", "5"], "--bptt do(es) not apply to cnn training"),
        (["train", "preset:shrinkrnn", "--task", "cnn"], "needs a cnn genotype"),
        (["train", "preset:shrinkcnn-a", "--data", "nope"], "unknown dataset 'nope'"),
        (["train", "preset:shrinkcnn-a", "--network", "imagenet"], "imagenet network does not fit digits"),
        (["train", "preset:shrinkcnn-a", "--schedule", "paper"], "folder: needs a path"),
        (["train", "--resume", "42"], "unknown training job 42"),
        (["train", "run:7"], "unknown run 7"),
        (["train"], "name a genotype"),
    ],
)
def test_train_errors_are_one_line(store_path, args, fragment, capsys):
    code = main([*args, "--store", str(store_path)])  # in-process: the same code path, no start-up cost
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0 and "Traceback" not in err
    assert fragment in lines[-1], err
    assert all(line.startswith(("job ", "error:")) for line in lines), err


def test_kill_9_then_resume_ends_where_an_uninterrupted_run_ends(store_path, capsys):
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", *TRAIN, "--store", str(store_path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kill_9_when(proc, lambda: _epochs(store_path) >= 1, "training", 60, poll=0.05)
    jobs = JobStore(store_path)
    killed_after = len(jobs.epochs(1))
    assert jobs.get_job(1).status == RunStatus.INTERRUPTED and 1 <= killed_after < 5
    assert (jobs.job_dir(1) / "checkpoint.pt").exists()
    resumed = json.loads(run_main(capsys, "train", "--resume", 1, "--json", "--store", store_path)[1].splitlines()[-1])
    fresh = json.loads(run_main(capsys, *TRAIN, "--json", "--store", store_path)[1].splitlines()[-1])
    assert resumed["status"] == fresh["status"] == "finished" and fresh["job_id"] == 2
    assert [e.epoch for e in jobs.epochs(1)] == list(range(1, 6))  # none lost, none repeated
    columns = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
    rows = [[tuple(getattr(e, c) for c in columns) for e in jobs.epochs(j)] for j in (1, 2)]
    assert rows[0] == rows[1]  # bit-for-bit on CPU
    assert resumed["metrics"]["accuracy"] == fresh["metrics"]["accuracy"] > 0.5
    listed = json.loads(run_main(capsys, "train", "--list", "--json", "--store", store_path)[1])
    assert [(r["id"], r["status"], r["epochs"]) for r in listed] == [(2, "finished", 5), (1, "finished", 5)]


def _epochs(path: Path) -> int:
    return count_rows(path, "SELECT COUNT(*) FROM job_epochs WHERE job_id=1")
