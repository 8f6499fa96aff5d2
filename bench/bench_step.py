"""One paper-setting shrink step (k candidates) on one core against every core, side by side.

`one`: the candidates one after another in this process with one torch thread (what a
2-core machine ran before the pool, since the default was all cores but one). `pool`: the
pool evaluator, `--workers` processes of one thread each (default: every core), the pool's
start-up included. Both train the same jobs; the records must be identical (printed).

    python bench/bench_step.py --task rnn --epochs 1               # k=10, PTB proxy, 1 epoch each
    python bench/bench_step.py --task cnn --epochs 1 --k 4         # a reduced CNN step
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_data import paper_data  # noqa: E402

from core.cell.genotype import Genotype  # noqa: E402
from core.search.candidates import StepJob  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.evaluators.batched import evaluate_batched  # noqa: E402
from core.search.evaluators.pool import Pool, machine_cores  # noqa: E402
from core.search.evaluators.single import evaluate_single  # noqa: E402
from core.search.loop import step_candidates  # noqa: E402
from core.search.tasks import make_task  # noqa: E402


def _same(a, b) -> bool:
    keys = ("idx", "status", "accuracy", "perplexity", "score", "epochs", "stop_reason")
    rows = lambda r: [{k: v for k, v in row.items() if k != "seconds"} for row in r.history]  # noqa: E731
    return (
        all(getattr(x, k) == getattr(y, k) for k in keys for x, y in zip(a, b))
        and all(rows(x) == rows(y) for x, y in zip(a, b))
        and len(a) == len(b)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("cnn", "rnn"), default="rnn")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--max-batches", type=int, default=0, help="cap batches per epoch (RNN; reduced steps)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=0, help="pool processes (default: every core)")
    args = ap.parse_args()
    data = paper_data(args.task)
    cfg = preset_config(
        args.task,
        "paper",
        data=data,
        k=args.k,
        epochs=args.epochs,
        threads=1,
        precision=args.precision,
        max_batches=args.max_batches,
        evaluator="batched" if args.task == "cnn" else "single",
    )
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    task = make_task(cfg, cpu, lambda m: None)
    dense = Genotype.dense(args.task, cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    nop = lambda *a: None  # noqa: E731
    local = evaluate_batched if task.evaluator == "batched" else evaluate_single
    workers = args.workers or machine_cores()
    t0 = time.perf_counter()
    pool = Pool(task, workers, 1)
    pooled = pool.run(StepJob(task, 1, jobs, 5, lambda: False, nop, nop))
    pool_s = time.perf_counter() - t0
    pool.close()
    t0 = time.perf_counter()
    alone = local(StepJob(task, 1, jobs, 5, lambda: False, nop, nop))
    one_s = time.perf_counter() - t0
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    speedup, ceiling = one_s / pool_s, _ceiling(alone, pooled, workers)
    print(
        f"{args.task} paper step, k={len(jobs)}, {cfg.epochs} epoch(s), batches cap {cfg.max_batches or '-'}, "
        f"precision {task.precision}: one core (1 thread, {task.evaluator}) {one_s:.1f} s | pool of {workers} "
        f"x 1 thread {pool_s:.1f} s (start-up included) | speed-up {speedup:.2f}x | records identical: "
        f"{_same(alone, pooled)} | load {load}"
    )
    print(
        f"hardware ceiling: a candidate trains {workers / ceiling:.2f}x as long when {workers} train at once as "
        f"when it trains alone (its own timer), so {workers} cores give at most {ceiling:.2f}x on this work; "
        f"the pool reached {speedup / ceiling:.0%} of that"
    )


def _ceiling(alone: list, pooled: list, workers: int) -> float:
    """The speed-up `workers` cores can give this work at best: `workers` over how much longer a
    candidate trains beside the others than alone, each timed by the trainer itself (so start-up,
    scheduling and the last straggler are not in it). Shared caches, memory bandwidth and sibling
    hyper-threads of the host set it, not the pool."""
    slower = sum(r.wall_s for r in pooled) / sum(r.wall_s for r in alone)
    return workers / slower


if __name__ == "__main__":
    main()
