"""Benchmark: one-at-a-time vs batched evaluator, on the same shrink step or a whole search.

    python bench/bench_evaluators.py step     # the same paper step, both evaluators, side by side
    python bench/bench_evaluators.py search   # a whole paper search, timed end to end
    python bench/bench_evaluators.py step --chunk 1 --precision fp32   # the batched baseline: no
        # stacking, no bf16; against --chunk 0 (all k in one union) it measures the stacking gain
        # apart from the precision's, and --precision bf16 against fp32 the precision's alone

`step` builds the paper's first shrink step (dense N=8 cell, k=10 candidates, 20 epochs, the
CIFAR-10 proxy) once, then times the single evaluator and the batched one on exactly those
jobs, alternating which goes first over --repeats rounds, and prints candidates per minute
(medians), their ratio, peak memory, and whether both would remove the same edge. `search`
runs whole searches (default: the batched evaluator) into a temporary store.

Data: the shared CIFAR-10 copy (../shared/data/cifar10/cifar-10-batches-py, or a copy under the
git-ignored data/cifar10/) when present, else digits, unless --data says otherwise.
On a 2-core CPU shorten with --epochs, --k, --steps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from paper_data import paper_data  # noqa: E402

from core.cell.genotype import Genotype, edge_str  # noqa: E402
from core.device import default_threads, describe, resolve_device  # noqa: E402
from core.search.candidates import StepJob  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.evaluators import auto_reason  # noqa: E402
from core.search.evaluators.batched import BatchedOptions, BatchedStats, auto_chunk, evaluate_batched  # noqa: E402
from core.search.evaluators.single import evaluate_single  # noqa: E402
from core.search.loop import choose, create_run, run_search, step_candidates  # noqa: E402
from core.search.tasks import CNNProxyTask  # noqa: E402
from core.seeds import derive_seed  # noqa: E402
from core.store.runs import Store  # noqa: E402


# ----- memory ------------------------------------------------------------------------------------
class PeakMemory:
    """Peak memory of a timed block: CUDA allocator peak on a GPU, sampled RSS growth on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._base = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss() - self._base)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss() - self._base)


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


# ----- step mode -------------------------------------------------------------------------------------
@dataclass
class Timing:
    seconds: float
    peak: int
    records: list


def run_step(args: argparse.Namespace) -> dict:
    cfg = search_config(args)
    device = resolve_device(cfg.device)
    notes: list[str] = []
    task = CNNProxyTask(cfg, device, notes.append)
    if notes:
        print(f"data notes ({len(notes)}): {notes[0]}{' ...' if len(notes) > 1 else ''}")
    dense = Genotype.dense("cnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    for job in jobs:
        task.cost(job[2])  # torchinfo once, outside the timings
    step_seed = derive_seed(cfg.seed, 1)
    options = BatchedOptions(
        chunk=args.chunk, amp=amp_setting(args), cuda_graphs=args.cuda_graphs, cudnn_benchmark=args.cudnn_benchmark
    )
    print(header(cfg, device, task, len(jobs), options))
    names = ("batched",) if args.skip_single else ("single", "batched")
    times: dict[str, list[Timing]] = {name: [] for name in names}
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(time_step(name, task, jobs, step_seed, options, device))
            t = times[name][-1]
            print(
                f"  round {r + 1} {name:8s} {t.seconds:8.1f} s  {60 * len(jobs) / t.seconds:8.2f} cand/min  "
                f"peak {mib(t.peak)}"
            )
    if args.skip_single:
        t = times["batched"]
        med = sorted(x.seconds for x in t)[len(t) // 2]
        return {
            "mode": "step",
            "candidates": len(jobs),
            "chunk": options.chunk,
            "precision": args.precision,
            "seconds": {"batched": med},
            "candidates_per_min": {"batched": 60 * len(jobs) / med},
            "peak_bytes": {"batched": max(x.peak for x in t)},
            "choice": edge_str(c.edge) if (c := choose(t[-1].records)) else None,
        }
    return summarise(times, len(jobs), device)


def amp_setting(args: argparse.Namespace) -> bool | None:
    """--precision: fp32 turns bf16 autocast off, bf16 forces it, auto is the evaluator's default
    (bf16 on CUDA); the older --no-amp means fp32."""
    if args.no_amp or args.precision == "fp32":
        return False
    return True if args.precision == "bf16" else None


def time_step(
    name: str, task: CNNProxyTask, jobs: list, step_seed: int, options: BatchedOptions, device: torch.device
) -> Timing:
    never = lambda: False  # noqa: E731
    nop = lambda *a: None  # noqa: E731
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        if name == "single":
            records = evaluate_single(StepJob(task, 1, jobs, step_seed, never, nop, nop))
        else:
            records = evaluate_batched(
                StepJob(task, 1, jobs, step_seed, never, nop, nop), options=options, stats=BatchedStats()
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
    return Timing(seconds, mem.peak, records)


def summarise(times: dict[str, list[Timing]], k: int, device: torch.device) -> dict:
    med = {n: sorted(t.seconds for t in ts)[len(ts) // 2] for n, ts in times.items()}
    rate = {n: 60 * k / s for n, s in med.items()}
    peak = {n: max(t.peak for t in ts) for n, ts in times.items()}
    single, batched = times["single"][-1].records, times["batched"][-1].records
    pick = {n: choose(r) for n, r in (("single", single), ("batched", batched))}
    diffs = [
        abs(a.accuracy - b.accuracy)
        for a, b in zip(single, batched)
        if a.accuracy is not None and b.accuracy is not None
    ]
    print(
        f"\nsingle : {rate['single']:8.2f} candidates/min  (median {med['single']:.1f} s, peak {mib(peak['single'])})"
    )
    print(
        f"batched: {rate['batched']:8.2f} candidates/min  (median {med['batched']:.1f} s, peak {mib(peak['batched'])})"
    )
    print(
        f"ratio batched/single: {rate['batched'] / rate['single']:.2f}x "
        f"({'agrees with' if rate['batched'] >= rate['single'] else 'contradicts'} auto's choice of batched)"
    )
    print(
        f"chosen edge: single {edge_str(pick['single'].edge if pick['single'] else None)}, "
        f"batched {edge_str(pick['batched'].edge if pick['batched'] else None)}; "
        f"mean |accuracy difference| {sum(diffs) / max(1, len(diffs)):.4f}"
    )
    peak_kind = "CUDA max allocated" if device.type == "cuda" else "RSS growth"
    return {
        "mode": "step",
        "candidates": k,
        "seconds": med,
        "candidates_per_min": rate,
        "ratio": rate["batched"] / rate["single"],
        "peak_bytes": peak,
        "peak_kind": peak_kind,
        "same_choice": (pick["single"] and pick["single"].edge) == (pick["batched"] and pick["batched"].edge),
    }


# ----- search mode -------------------------------------------------------------------------------------
def run_search_mode(args: argparse.Namespace) -> dict:
    out = {"mode": "search", "runs": {}}
    for evaluator in args.evaluators.split(","):
        cfg = search_config(args, evaluator=evaluator)
        device = resolve_device(cfg.device)
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(Path(tmp) / "bench.db")
            run_id = create_run(store, cfg)
            print(
                f"search: {evaluator} evaluator, {cfg.nodes} nodes, k {cfg.k}, {cfg.epochs} epochs, "
                f"max steps {cfg.max_steps or 'to the end'}, data {cfg.data}, {describe(device)}"
            )
            with PeakMemory(device) as mem:
                t0 = time.perf_counter()
                status = run_search(store, run_id)
                seconds = time.perf_counter() - t0
            steps, cands = store.steps(run_id), store.candidates(run_id)
            rate = 60 * len(cands) / seconds
            removed = " ".join(edge_str(s.removed) for s in steps[1:])
            print(
                f"  {status}: {len(steps)} steps, {len(cands)} candidates in {seconds:.1f} s = {rate:.2f} cand/min, "
                f"peak {mib(mem.peak)}\n  removed: {removed}"
            )
            out["runs"][evaluator] = {
                "status": status,
                "seconds": seconds,
                "steps": len(steps),
                "candidates": len(cands),
                "candidates_per_min": rate,
                "peak_bytes": mem.peak,
                "removed": [list(s.removed) for s in steps[1:]],
            }
    return out


# ----- shared --------------------------------------------------------------------------------------------
def paper_cnn_config(args: argparse.Namespace, evaluator: str, **extra):
    """The paper's CNN search with the benchmark's data, size, seed and threads (bench_ray's too)."""
    size = dict(epochs=args.epochs, k=args.k, nodes=args.nodes, seed=args.seed, threads=args.threads)
    return preset_config("cnn", "paper", data=args.data or paper_data("cnn"), evaluator=evaluator, **size, **extra)


def search_config(args: argparse.Namespace, evaluator: str = "single"):
    return paper_cnn_config(args, evaluator, device=args.device, max_steps=args.steps)


def header(cfg, device: torch.device, task: CNNProxyTask, k: int, options: BatchedOptions) -> str:
    chunk = options.chunk or auto_chunk(device, k)
    amp = options.amp if options.amp is not None else device.type == "cuda"
    return (
        f"step 1 of a paper search: {cfg.nodes} nodes, {k} candidates, {cfg.epochs} epochs, batch {cfg.batch_size}\n"
        f"data {task.data.name}: {len(task.data.y_train)} train / {len(task.data.y_val)} val images\n"
        f"device {describe(device)}, torch {torch.__version__}; batched: {chunk} per union, "
        f"bf16 {'on' if amp else 'off'}, "
        f"CUDA graphs {'on' if options.cuda_graphs and device.type == 'cuda' else 'off'}\n"
        f"{auto_reason('cnn', device)}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("step", "search"))
    p.add_argument("--data", help="dataset spec (default: shared CIFAR-10 if present, else digits)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--epochs", type=int, help="proxy epochs (paper: 20)")
    p.add_argument("--k", type=int, help="candidates per step (paper: 10)")
    p.add_argument("--nodes", type=int, help="cell nodes (paper: 8)")
    p.add_argument("--steps", type=int, default=0, help="search mode: stop after this many steps (0: to the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: as the search, all cores but one)")
    p.add_argument("--repeats", type=int, default=3, help="step mode: rounds, alternating which evaluator goes first")
    p.add_argument("--evaluators", default="batched", help="search mode: comma list of single,batched")
    p.add_argument("--chunk", type=int, default=0, help="batched: candidates per union (0: auto)")
    p.add_argument("--cuda-graphs", action="store_true", help="batched: replay the train step from a CUDA graph")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="batched: auto = bf16 autocast on CUDA, fp32 on CPU; fp32 or bf16 forces one",
    )
    p.add_argument("--no-amp", action="store_true", help="batched: the same as --precision fp32")
    p.add_argument("--skip-single", action="store_true", help="step mode: time the batched evaluator only")
    p.add_argument("--cudnn-benchmark", action="store_true", help="batched: cuDNN autotuning during the step")
    p.add_argument("--json", type=Path, help="also write the summary here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads or default_threads())  # what run_search does
    summary = run_step(args) if args.mode == "step" else run_search_mode(args)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
