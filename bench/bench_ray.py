"""Benchmark: the single evaluator against the ray evaluator on the same paper shrink step.

    nice -n 10 python bench/bench_ray.py --epochs 1 --k 2      # a 2-core CPU, ~10 min
    python bench/bench_ray.py                                   # the paper step: k=10, 20 epochs

One run gives every figure: it builds the paper's first shrink step (dense N=8 cell, the CIFAR-10
proxy) once, trains it with `single` at --threads torch threads, then with `ray` on a local
cluster of the same --threads CPUs (one candidate per task, one thread each), and prints
candidates per minute of both, their ratio, whether the records and the chosen edge agree, the
cluster's start-up and data-shipping cost (once per run), and the per-task overhead of
scheduling and shipping (a task that carries a real task's arguments and returns real records,
timed one at a time) with its projection to 10 GPUs x 10 candidates.

The load average is printed next to the timings: on a shared machine it explains a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from bench_evaluators import paper_cnn_config  # noqa: E402

from core.cell.genotype import Genotype, edge_str  # noqa: E402
from core.device import describe  # noqa: E402
from core.search.candidates import StepJob  # noqa: E402
from core.search.evaluators import ray_eval  # noqa: E402
from core.search.evaluators.single import evaluate_single  # noqa: E402
from core.search.loop import choose, step_candidates  # noqa: E402
from core.search.tasks import CNNProxyTask  # noqa: E402
from core.seeds import derive_seed  # noqa: E402

NEVER, NOP = (lambda: False), (lambda *a: None)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build_step(args: argparse.Namespace, evaluator: str):
    cfg = paper_cnn_config(args, evaluator, ray_cpus_per_candidate=1.0)
    task = CNNProxyTask(cfg, torch.device("cpu"), NOP)
    dense = Genotype.dense("cnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    return cfg, task, jobs, derive_seed(cfg.seed, 1)


def time_single(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    cfg, task, jobs, seed = build_step(args, "single")
    for job in jobs:
        task.cost(job[2])  # torchinfo once, outside the timing (a ray worker pays it inside its task)
    print(
        f"step 1 of a paper search: {cfg.nodes} nodes, {len(jobs)} candidates, {cfg.epochs} epoch(s), "
        f"data {task.data.name}: {len(task.data.y_train)} train / {len(task.data.y_val)} val images"
    )
    print(f"single: {describe(torch.device('cpu'))} ... load {load()}", flush=True)
    t0 = time.perf_counter()
    records = evaluate_single(StepJob(task, 1, jobs, seed, NEVER, NOP, NOP))
    seconds = time.perf_counter() - t0
    print(f"  {seconds:.1f} s = {60 * len(jobs) / seconds:.2f} candidates/min   load {load()}", flush=True)
    return {"seconds": seconds, "records": records, "k": len(jobs)}


def time_ray(args: argparse.Namespace) -> dict:
    os.environ[ray_eval.LOCAL_CPUS_ENV] = str(args.threads)
    t0 = time.perf_counter()
    info = ray_eval.connect("")
    start_s = time.perf_counter() - t0
    cfg, task, jobs, seed = build_step(args, "ray")
    t0 = time.perf_counter()
    ray_eval.prepare_ray(task, NOP)
    put_s = time.perf_counter() - t0
    print(
        f"ray: {ray_eval.describe_cluster(info)}, 1 CPU and 1 torch thread per candidate; cluster start "
        f"{start_s:.1f} s, data into the object store {1000 * put_s:.0f} ms (once per run) ... load {load()}",
        flush=True,
    )
    t0 = time.perf_counter()
    records = ray_eval.evaluate_ray(StepJob(task, 1, jobs, seed, NEVER, NOP, NOP))
    seconds = time.perf_counter() - t0
    print(f"  {seconds:.1f} s = {60 * len(jobs) / seconds:.2f} candidates/min   load {load()}", flush=True)
    return {
        "seconds": seconds,
        "records": records,
        "start_s": start_s,
        "put_s": put_s,
        "task": task,
        "jobs": jobs,
        "seed": seed,
    }


def echo(task_type, cfg, data_box, step, jobs, step_seed, threads, use_cuda, records):
    """A task with a real task's arguments that sends back real records and trains nothing."""
    return records


def task_overhead(run: dict, n: int) -> dict:
    """Scheduling + shipping per task, in ms: n echo tasks one at a time (submit, wait, get), and n
    at once (throughput). Each carries the settings, the data's ref, the jobs, and returns the records."""
    import ray

    ray_run = ray_eval.run_of(run["task"])
    remote = ray.remote(max_retries=ray_eval.MAX_RETRIES)(echo).options(num_cpus=ray_run.num_cpus)
    one = run["jobs"][:1]
    rec = run["records"][:1]
    args = (ray_run.task_type, ray_run.cfg, [ray_run.data_ref], 1, one, run["seed"], 1, False, rec)
    call = lambda: remote.remote(*args)  # noqa: E731
    ray.get([call() for _ in range(4)])  # warm
    t0 = time.perf_counter()
    for _ in range(n):
        ray.get(call())
    sequential = 1000 * (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    ray.get([call() for _ in range(n)])
    batch = 1000 * (time.perf_counter() - t0) / n
    return {"round_trip_ms": sequential, "throughput_ms": batch}


def comparable(rec) -> dict:
    d = {k: v for k, v in rec.__dict__.items() if k not in ("wall_s", "worker")}
    d["history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in rec.history]
    return d


def project(candidate_s: float, overhead_ms: float, gpus: int = 10, k: int = 10) -> str:
    """One step of k candidates on `gpus` GPUs, one candidate per GPU, against one GPU one at a time."""
    one = k * candidate_s
    many = candidate_s * -(-k // gpus) + overhead_ms / 1000
    return (
        f"{k} candidates of {candidate_s:.0f} s each: one GPU {one:.0f} s a step, {gpus} GPUs "
        f"{many:.1f} s ({one / many:.2f}x; the overhead is {100 * overhead_ms / 1000 / many:.3f}% of the step)"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset spec (default: shared CIFAR-10 if present, else digits)")
    p.add_argument("--epochs", type=int, help="proxy epochs (paper: 20)")
    p.add_argument("--k", type=int, help="candidates per step (paper: 10)")
    p.add_argument("--nodes", type=int, help="cell nodes (paper: 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="total CPU threads: single's torch threads, ray's workers")
    p.add_argument("--overhead-tasks", type=int, default=100, help="echo tasks timed for the per-task overhead")
    p.add_argument(
        "--gpu-candidate-s",
        type=float,
        default=60.0,
        help="seconds one paper candidate trains on one GPU, for the projection",
    )
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, load average {load()}")
    single = time_single(args)
    ray_run = time_ray(args)
    over = task_overhead(ray_run, args.overhead_tasks)
    k = single["k"]
    rate = {n: 60 * k / r["seconds"] for n, r in (("single", single), ("ray", ray_run))}
    same = [comparable(a) for a in single["records"]] == [comparable(b) for b in ray_run["records"]]
    picks = [choose(r["records"]) for r in (single, ray_run)]
    print(f"\nsingle ({args.threads} threads): {rate['single']:.2f} candidates/min")
    print(f"ray ({args.threads} workers x 1 thread): {rate['ray']:.2f} candidates/min")
    print(f"ratio ray/single: {rate['ray'] / rate['single']:.2f}x (goal >= 1.2x)")
    diffs = [
        abs(a.accuracy - b.accuracy)
        for a, b in zip(single["records"], ray_run["records"])
        if a.accuracy is not None and b.accuracy is not None
    ]
    print(
        f"same records: {same}"
        + (
            ""
            if same or args.threads == 1
            else f" (single trains at {args.threads} threads, a ray task at 1: float sums differ with the thread count;"
            f" tests/test_ray.py compares at equal threads)"
        )
        + f"; max |accuracy difference| {max(diffs, default=0):.4f}; "
        f"chosen edge single {edge_str(picks[0].edge)}, ray {edge_str(picks[1].edge)}"
    )
    print(
        f"per-task overhead (scheduling + shipping): {over['round_trip_ms']:.1f} ms one at a time, "
        f"{over['throughput_ms']:.1f} ms each in a batch of {args.overhead_tasks} (goal < 50 ms)"
    )
    print(f"once per run: cluster start {ray_run['start_s']:.1f} s, data put {1000 * ray_run['put_s']:.0f} ms")
    print(f"projection: {project(args.gpu_candidate_s, over['round_trip_ms'])}")
    print(f"load average at the end {load()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "candidates_per_min": rate,
                    "ratio": rate["ray"] / rate["single"],
                    "same_records": same,
                    "overhead_ms": over,
                    "start_s": ray_run["start_s"],
                    "put_s": ray_run["put_s"],
                    "threads": args.threads,
                    "k": k,
                },
                indent=2,
            )
        )
    ray_eval.disconnect()


if __name__ == "__main__":
    main()
