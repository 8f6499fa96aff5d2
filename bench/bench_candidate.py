"""Seconds per candidate at `paper` settings: the cost unit of a whole search.

Trains a few real candidates of the first shrink step (dense DAG minus one edge) exactly as
a search's worker does (the evaluator `auto` uses per candidate: batched-one-slot for CNN,
single for RNN), on the real proxy data when ../shared/data is present, and prints seconds
per candidate and per epoch, the arithmetic it achieved (GFLOPS: forward + backward of every
training image or token, forward of validation) and that as a share of the matmul peak
measured in the same run at the same precision and threads. On a CPU the paper's 20 (CNN) /
10 (RNN) epochs take long: pass --epochs to cap them; per-epoch time is what scales.
Several precisions given as a list run alternately, so a loaded machine affects them alike;
the process's CPU seconds per epoch are printed too (on one thread, what an idle core takes).

    python bench/bench_candidate.py --task cnn --epochs 1 --candidates 1 --threads 1 --precision fp32,auto
    python bench/bench_candidate.py --task rnn --epochs 1 --candidates 1 --threads 1 --precision fp32,auto
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paper_data import paper_data  # noqa: E402

from core.cell.genotype import Genotype  # noqa: E402
from core.device import default_threads, describe, resolve_device  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.evaluators.pool import inner_evaluator  # noqa: E402
from core.search.loop import step_candidates  # noqa: E402
from core.search.tasks import make_task  # noqa: E402


def matmul_peak(precision: str, device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """GFLOPS of an n x n matmul at this precision and thread count: the ceiling of the machine."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def epoch_flops(task, genotype: Genotype, epochs: int) -> float:
    """Arithmetic of `epochs` epochs: 3x forward (forward + backward) per training sample, 1x per
    validation sample; a multiply-add is 2 FLOPs. The RNN counts W0, every edge and the decoder."""
    cost = task.cost(genotype)
    if task.kind == "cnn":
        per = 2.0 * cost.macs
        return epochs * per * (3 * len(task.data.y_train) + len(task.data.y_val))
    cfg = task.cfg
    per = 2.0 * ((cfg.emb + cfg.hidden) * 2 * cfg.hidden + 2 * cost.flops + cfg.hidden * task.corpus.vocab_size)
    n_train = len(task.corpus.train) - 1
    if cfg.max_batches:
        n_train = min(n_train, cfg.max_batches * cfg.batch_size * cfg.bptt)
    return epochs * per * (3 * n_train + len(task.corpus.valid) - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("cnn", "rnn"), default="cnn")
    ap.add_argument("--epochs", type=int, help="cap epochs (default: the paper's)")
    ap.add_argument("--candidates", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="auto", help="auto|fp32|bf16, or a list (fp32,auto) run alternately")
    ap.add_argument("--evaluator", default="", help="single or batched (default: what a pool worker runs)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the alternation (medians are printed)")
    args = ap.parse_args()
    data = paper_data(args.task)
    base = preset_config(
        args.task, "paper", data=data, device=args.device, evaluator="single", epochs=args.epochs, threads=args.threads
    )
    torch.set_num_threads(base.threads or default_threads())
    device = resolve_device(base.device)
    evaluator = args.evaluator or inner_evaluator(args.task, device)
    precisions = args.precision.split(",")
    tasks = {p: make_task(replace(base, precision=p, evaluator=evaluator), device, lambda m: None) for p in precisions}
    peaks = {p: matmul_peak(t.precision, device) for p, t in tasks.items()}
    dense = Genotype.dense(base.task, base.nodes, base.seed)
    rows: dict[str, list[dict]] = {p: [] for p in precisions}
    for _ in range(args.rounds):
        for idx, edge in enumerate(step_candidates(dense, args.candidates, base.seed, 1)):
            for p in precisions:
                rows[p].append(_one(tasks[p], dense.without_edge(edge), edge, idx, peaks[p], device))
                print(json.dumps({"precision": p, **rows[p][-1]}), flush=True)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    for p in precisions:
        r = rows[p]
        med = {
            k: statistics.median(x[k] for x in r)
            for k in ("seconds", "s_per_epoch", "cpu_s_per_epoch", "gflops", "peak_share")
        }
        print(
            f"task {base.task} | data {data} | device {describe(device, tasks[p].precision)} | evaluator "
            f"{evaluator} | precision {p} -> {tasks[p].precision} | epochs cap {base.epochs} | median "
            f"{med['seconds']:.1f} s/candidate, {med['s_per_epoch']:.2f} s/epoch (CPU {med['cpu_s_per_epoch']:.2f} s), "
            f"{med['gflops']:.1f} GFLOPS = "
            f"{100 * med['peak_share']:.1f}% of the {peaks[p]:.0f} GFLOPS {tasks[p].precision} matmul peak "
            f"| load {' '.join(f'{v:.2f}' for v in load)}"
        )


def _one(task, genotype: Genotype, edge, idx: int, peak: float, device: torch.device) -> dict:
    """Train one candidate as the search does; its wall time and arithmetic rate."""
    from core.search.candidates import StepJob
    from core.search.evaluators import evaluator_fn

    train = evaluator_fn(task.evaluator)
    nop = lambda *a: None  # noqa: E731
    t0, c0 = time.perf_counter(), time.process_time()
    rec = train(StepJob(task, 1, [(idx, edge, genotype)], 1, lambda: False, nop, nop))[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    epochs = max(rec.epochs, 1)
    gflops = epoch_flops(task, genotype, epochs) / wall / 1e9
    quality = rec.accuracy if task.kind == "cnn" else rec.perplexity
    return dict(
        edge=f"{edge[0]}-{edge[1]}",
        seconds=round(wall, 2),
        epochs=rec.epochs,
        s_per_epoch=round(wall / epochs, 2),
        cpu_s_per_epoch=round(cpu / epochs, 2),
        gflops=round(gflops, 2),
        peak_share=round(gflops / peak, 4),
        quality=quality,
        stop=rec.stop_reason,
    )


if __name__ == "__main__":
    main()
