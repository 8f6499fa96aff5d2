"""Everything a first GPU should be asked, in one call of at most 8 minutes, as one JSON report.

    python bench/gpu_check.py [--out report.json] [--budget 480]

A session lent a GPU spends it here once. Parts, in order, each cut off at its own share and
the whole at --budget seconds (a part that runs out is recorded as such, and the rest still run):

1. tests      the CUDA-only tests (tests/test_batched.py -k cuda) and the CPU fakes of the CUDA
              paths (tests/test_gpu_paths.py, its Ray part skipped), on the GPU box.  ~60 s
2. syncs      one batched epoch of the paper's first step (k=10, batch 128, N=8) under
              torch.cuda.set_sync_debug_mode("warn"): host syncs per batch.           ~20 s
3. bench      bench_evaluators.py step at paper settings (10 epochs), batched only:
              chunk 1 fp32 (the baseline), chunk k fp32 (stacking), chunk k bf16 (precision). ~150 s
4. search     a 2-step paper search (python -m core search cnn --preset paper --max-steps 2), timed. ~120 s
5. final      one final-training epoch, stopped, then resumed for a second: status, epochs,
              whether the resume trained on, Adam's step device after it, syncs per batch. ~40 s

`--device cpu --budget 120 --small` runs the same code on a CPU with small settings, to check
the script itself (its figures mean nothing there).

Data: the CIFAR-10 copy under shared/ (or ../shared, or data/) when present, else digits (then
the figures are not paper figures, and the report says so). Without CUDA: one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

BUDGET_S = 480
SMALL = dict(nodes=4, k=2, per_class_train=30, per_class_val=10)  # --small: the script's own check
SHARES = {"tests": 90, "syncs": 60, "bench": 200, "search": 150, "final": 90}  # seconds, at most


class Clock:
    """The whole check's deadline, and each part's share of what is left."""

    def __init__(self, budget: float) -> None:
        self.end = time.monotonic() + budget

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def share(self, part: str) -> float:
        return min(SHARES[part], self.left())


def run_cmd(cmd: list[str], timeout: float) -> dict:
    """A subprocess part: its exit code, wall time and output tail (or that it ran out of time)."""
    t0 = time.perf_counter()
    if timeout < 5:
        return {"skipped": "no time left in the budget"}
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return {
            "cmd": " ".join(cmd),
            "rc": out.returncode,
            "seconds": round(time.perf_counter() - t0, 1),
            "tail": (out.stdout + out.stderr)[-3000:],
        }
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"")[-2000:]
        return {
            "cmd": " ".join(cmd),
            "rc": None,
            "timed_out_after_s": round(timeout),
            "tail": tail.decode(errors="replace") if isinstance(tail, bytes) else tail,
        }


def part_tests(clock: Clock) -> dict:
    select = "test_cuda_batched or test_cuda_graph or (gpu_paths and not gpu_task and not gpu_cluster)"
    return run_cmd(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            "tests/test_batched.py",
            "tests/test_gpu_paths.py",
            "-k",
            select,
        ],
        clock.share("tests"),
    )


def sync_debug(device: str, mode: str | int) -> None:
    if device == "cuda":
        torch.cuda.set_sync_debug_mode(mode)


def part_syncs(data: str, device: str, small: bool) -> dict:
    """Host syncs per batch of one batched epoch at paper shapes (sync debug mode warns per sync)."""
    from core.cell.genotype import Genotype
    from core.data.batches import epoch_batches
    from core.search.candidates import StepJob
    from core.search.config import preset_config
    from core.search.evaluators.batched import BatchedStats, evaluate_batched
    from core.search.loop import step_candidates
    from core.search.tasks import CNNProxyTask

    cfg = preset_config("cnn", "paper", data=data, epochs=1, device=device, **(SMALL if small else {}))
    task = CNNProxyTask(cfg, torch.device(device), lambda m: None)
    dense = Genotype.dense("cnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    for job in jobs:
        task.cost(job[2])
    batches = len(epoch_batches(len(task.data.y_train), cfg.batch_size, 1, 1))
    stats = BatchedStats()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sync_debug(device, "warn")
        try:
            records = evaluate_batched(
                StepJob(task, 1, jobs, 1, lambda: False, lambda *a: None, lambda *a: None), stats=stats
            )
        finally:
            sync_debug(device, 0)
    syncs = [str(w.message).splitlines()[0] for w in caught if "synchroniz" in str(w.message).lower()]
    return {
        "batches": batches,
        "syncs": len(syncs),
        "syncs_per_batch": round(len(syncs) / max(batches, 1), 2),
        "first_sync_messages": sorted(set(syncs))[:5],
        "seconds": round(time.perf_counter() - t0, 1),
        "chunks": stats.chunks,
        "peak_bytes": stats.peak_bytes,
        "statuses": [r.status for r in records],
    }


def part_bench(clock: Clock, data: str, out_dir: Path, device: str, small: bool) -> dict:
    results = {}
    for label, chunk, precision in (("chunk1_fp32", 1, "fp32"), ("chunkk_fp32", 0, "fp32"), ("chunkk_bf16", 0, "bf16")):
        out = out_dir / f"bench_{label}.json"
        share = min(clock.share("bench") / 3 + 10, clock.left())
        size = ["--epochs", "1", "--k", "2", "--nodes", "4"] if small else ["--epochs", "10"]
        res = run_cmd(
            [
                sys.executable,
                "bench/bench_evaluators.py",
                "step",
                "--data",
                data,
                "--device",
                device,
                *size,
                "--repeats",
                "1",
                "--skip-single",
                "--chunk",
                str(chunk),
                "--precision",
                precision,
                "--json",
                str(out),
            ],
            share,
        )
        if out.exists():
            res["summary"] = json.loads(out.read_text())
        results[label] = res
    rate = {k: v.get("summary", {}).get("candidates_per_min", {}).get("batched") for k, v in results.items()}
    if rate["chunk1_fp32"] and rate["chunkk_fp32"]:
        results["stacking_gain"] = round(rate["chunkk_fp32"] / rate["chunk1_fp32"], 2)
    if rate["chunkk_fp32"] and rate["chunkk_bf16"]:
        results["bf16_gain"] = round(rate["chunkk_bf16"] / rate["chunkk_fp32"], 2)
    return results


def part_search(clock: Clock, data: str, out_dir: Path, device: str, small: bool) -> dict:
    store = out_dir / "search.db"
    size = ["--epochs", "1", "--k", "2", "--nodes", "4"] if small else []
    return run_cmd(
        [
            sys.executable,
            "-m",
            "core",
            "search",
            "cnn",
            "--preset",
            "paper",
            "--data",
            data,
            *size,
            "--max-steps",
            "2",
            "--device",
            device,
            "--store",
            str(store),
            "--json",
        ],
        clock.share("search"),
    )


def part_final(data: str, out_dir: Path, device: str, small: bool) -> dict:
    """One epoch, a stop, a resume for the second; what the resumed optimizer holds."""
    from core.cell.presets import load_preset
    from core.store.jobs import JobStore
    from core.training import cnn as cnn_training
    from core.training.config import train_config
    from core.training.context import JobObserver
    from core.training.engine import create_job, run_job

    store = JobStore(out_dir / "final.db")
    cfg = train_config(
        "cnn", "demo", data=data, epochs=2, max_batches=5 if small else 60, onnx=False, device=device, optimizer="adam"
    )
    job = create_job(store, load_preset("shrinkcnn-a"), cfg, "gpu_check")
    stop = threading.Event()

    class StopAfterOne(JobObserver):
        def on_epoch(self, job_id, row):
            stop.set()

    seen = {}
    make_optimizer = cnn_training.make_optimizer

    def spying_optimizer(model, c):
        opt = make_optimizer(model, c)
        seen["opt"] = opt
        return opt

    cnn_training.make_optimizer = spying_optimizer
    t0 = time.perf_counter()
    try:
        first = run_job(store, job, StopAfterOne(), stop)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sync_debug(device, "warn")
            try:
                second = run_job(store, job)
            finally:
                sync_debug(device, 0)
    finally:
        cnn_training.make_optimizer = make_optimizer
    steps = [s["step"].device.type for s in seen["opt"].state.values() if "step" in s and torch.is_tensor(s["step"])]
    rec = store.get_job(job)
    return {
        "first": first,
        "second": second,
        "status": rec.status,
        "error": rec.error,
        "epochs": [e.epoch for e in store.epochs(job)],
        "val_acc": [e.val_acc for e in store.epochs(job)],
        "adam_step_devices": sorted(set(steps)),
        "syncs_in_resumed_run": len(caught),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def find_data() -> tuple[str, bool]:
    from paper_data import paper_data

    spec = paper_data("cnn")
    return spec, spec.startswith("cifar10")


def guarded(name: str, fn, report: dict, out: Path) -> None:
    """Run one part; its failure is recorded and the next part runs. The report is rewritten
    after each part, so a check cut short still leaves what it measured."""
    t0 = time.perf_counter()
    try:
        report["parts"][name] = fn()
    except Exception as exc:  # noqa: BLE001 - a failing part is a finding, not the end of the check
        report["parts"][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    report["parts"][name].setdefault("wall_s", round(time.perf_counter() - t0, 1))
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"gpu_check: {name} done in {report['parts'][name]['wall_s']} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_out = Path(os.environ.get("OUT", tempfile.gettempdir())) / "gpu_check.json"
    p.add_argument("--out", type=Path, default=default_out, help=f"the JSON report (default {default_out})")
    p.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole check (default 480)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: check the script itself")
    p.add_argument("--small", action="store_true", help="tiny settings (with --device cpu)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"error: gpu_check needs a CUDA GPU, and torch {torch.__version__} sees none here", file=sys.stderr)
        return 1
    clock = Clock(args.budget)
    data, paper_data = ("digits", False) if args.small else find_data()
    on_gpu = args.device == "cuda"
    props = torch.cuda.get_device_properties(0) if on_gpu else None
    report = {
        "gpu": torch.cuda.get_device_name(0) if on_gpu else "none (--device cpu)",
        "capability": f"{props.major}.{props.minor}" if props else None,
        "memory_gib": round(props.total_memory / 2**30, 1) if props else None,
        "gpus": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "data": data,
        "paper_data": paper_data,
        "parts": {},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    dev, small = args.device, args.small
    if on_gpu:
        guarded("tests", lambda: part_tests(clock), report, args.out)
    guarded("syncs", lambda: part_syncs(data, dev, small), report, args.out)
    guarded("bench", lambda: part_bench(clock, data, work, dev, small), report, args.out)
    guarded("search", lambda: part_search(clock, data, work, dev, small), report, args.out)
    guarded("final", lambda: part_final(data, work, dev, small), report, args.out)
    print(f"gpu_check: report in {args.out}", file=sys.stderr)
    print(json.dumps({k: v for k, v in report.items() if k != "parts"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
