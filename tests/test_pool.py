"""The pool evaluator: a step's candidates in worker processes (one thread each) give the same
records as training them one at a time in this process with one thread; auto picks it on a
CPU with cores for two or more workers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as tmp
from helpers import count_rows, kill_9_when, parent_pid, wait_until

import core.search.evaluators.pool as pool_mod
from core.cell.genotype import Genotype
from core.search.candidates import StepJob
from core.search.config import preset_config
from core.search.evaluators import resolve_evaluator
from core.search.evaluators.batched import evaluate_batched
from core.search.evaluators.pool import Pool, pool_size
from core.search.evaluators.single import evaluate_single
from core.search.loop import step_candidates
from core.search.tasks import make_task
from core.store.runs import Store

CPU = torch.device("cpu")
SAME = ("idx", "status", "accuracy", "perplexity", "score", "epochs", "stop_reason", "history")


def _strip(rec) -> dict:
    """What must be identical: everything but the wall time and the worker label."""
    out = {k: getattr(rec, k) for k in SAME}
    out["history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in rec.history]
    return out


def test_auto_picks_the_pool_with_two_cores(monkeypatch):
    monkeypatch.setattr(pool_mod, "machine_cores", lambda: 2)
    monkeypatch.setenv(pool_mod.WORKERS_ENV, "8")
    for kind in ("cnn", "rnn"):
        cfg = preset_config(kind, "paper")
        assert pool_size(cfg, CPU) == (2, 1) and resolve_evaluator(cfg, CPU) == "pool"
        assert resolve_evaluator(cfg, torch.device("cuda")) == ("batched" if kind == "cnn" else "single")
        assert pool_size(preset_config(kind, "paper", threads=2), CPU) == (1, 2)  # one worker: no pool
        assert resolve_evaluator(preset_config(kind, "paper", threads=2), CPU) != "pool"
    monkeypatch.setenv(pool_mod.WORKERS_ENV, "1")
    assert resolve_evaluator(preset_config("cnn", "paper"), CPU) == "batched"
    assert resolve_evaluator(preset_config("rnn", "paper", evaluator="batched"), CPU) == "single"


def _compare(kind: str, cfg, local) -> None:
    torch.set_num_threads(1)
    task = make_task(cfg, CPU, lambda m: None)
    dense = Genotype.dense(kind, cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    nop = lambda *a: None  # noqa: E731
    alone = local(StepJob(task, 1, jobs, 11, lambda: False, nop, nop))
    rows, results = [], []
    pool = Pool(task, workers=2, threads=1)
    try:
        pooled = pool.run(StepJob(task, 1, jobs, 11, lambda: False, lambda idx, row: rows.append(idx), results.append))
    finally:
        pool.close()
    assert [_strip(r) for r in pooled] == [_strip(r) for r in alone]
    assert sorted(r.idx for r in results) == [j[0] for j in jobs]
    assert sorted(rows) == sorted(r.idx for r in pooled for _ in r.history)  # every epoch row, once
    assert len({r.worker for r in pooled}) >= 1 and all(" process " in r.worker for r in pooled)


def test_pool_matches_one_at_a_time_cnn():
    cfg = preset_config("cnn", "demo", k=3, epochs=2, max_batches=4, precision="fp32")  # 3 jobs on 2 workers
    _compare("cnn", cfg, evaluate_batched)


@pytest.mark.skipif("forkserver" not in tmp.get_all_start_methods(), reason="no fork server on this platform")
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads parent pids from /proc")
def test_each_pool_forks_its_workers_from_one_fork_server():
    """Workers fork from one fork server per process (torch already imported there), so a
    second pool, such as the control's after the search's, does not pay torch's import again;
    and never from this process, whose threads (the app's searches) a fork would copy."""
    cfg = preset_config("cnn", "demo", k=2, epochs=1, max_batches=1)
    task = make_task(cfg, CPU, lambda m: None)
    dense = Genotype.dense("cnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, 2, cfg.seed, 1))]
    parents = []
    for _ in range(2):
        pool = Pool(task, workers=2, threads=1)
        try:
            records = pool.run(StepJob(task, 1, jobs, 5, lambda: False, lambda *a: None, lambda *a: None))
            parents.append({parent_pid(int(r.worker.rsplit(" ", 1)[1])) for r in records})
        finally:
            pool.close()
    assert parents[0] == parents[1] and len(parents[0]) == 1 and os.getpid() not in parents[0]


def test_pool_stop_request_reaches_the_workers():
    cfg = preset_config("rnn", "demo", k=2, epochs=50, max_batches=5)
    task = make_task(cfg, CPU, lambda m: None)
    dense = Genotype.dense("rnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, 2, 0, 1))]
    seen: list[int] = []
    pool = Pool(task, workers=2, threads=1)
    try:
        records = pool.run(
            StepJob(task, 1, jobs, 3, lambda: len(seen) >= 2, lambda idx, row: seen.append(idx), lambda r: None)
        )
    finally:
        pool.close()
    assert records and all(r.status == "stopped" for r in records)
    assert all(r.epochs < 50 for r in records)


def test_pool_matches_one_at_a_time_rnn_bf16_and_workers_do_not_rerun_the_servers_main_script(tmp_path, monkeypatch):
    """Under `streamlit run app.py` (and AppTest) `__main__` is app.py: spawned workers used to
    re-run it and die (BrokenProcessPool), so every app search on a 2-core machine failed. The
    pool started from such a script trains the RNN in bf16 exactly as one-at-a-time training does."""
    import sys
    import types

    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('a pool worker ran the main script')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    cfg = preset_config("rnn", "demo", k=2, epochs=2, max_batches=5, precision="bf16")
    _compare("rnn", cfg, evaluate_single)
    assert sys.modules["__main__"] is fake_main


def test_a_kill_9_of_the_search_ends_its_workers(tmp_path):
    """After a kill -9 of the search nothing closes the pool: its workers, blocked on a queue
    whose other ends they hold themselves, would wait for ever. Each watches the search's
    process and ends once it is gone."""
    db = tmp_path / "runs.db"
    env = {k: v for k, v in os.environ.items() if k != pool_mod.WORKERS_ENV}  # the pool, as a user gets it
    args = ["search", "cnn", "--preset", "demo", "--k", "2", "--epochs", "2", "--max-batches", "2", "--store", str(db)]
    proc = subprocess.Popen([sys.executable, "-m", "core", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    kill_9_when(proc, lambda: count_rows(db, "SELECT COUNT(*) FROM steps") >= 1, "the search", 120, poll=0.05)
    labels = [c.worker for c in Store(db).candidates(1, 0)]
    assert labels and all(" process " in label for label in labels), labels  # trained by pool workers
    workers = {int(label.rsplit(" ", 1)[1]) for label in labels}
    gone = lambda: all(parent_pid(pid) is None for pid in workers)  # noqa: E731
    wait_until(gone, "the workers to end", 10 * pool_mod.OWNER_POLL_S)
