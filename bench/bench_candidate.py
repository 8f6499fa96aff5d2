"""Seconds per candidate at `paper` settings: the cost unit of a whole search.

Trains a few real candidates of the first shrink step (dense DAG minus one edge) exactly as
the search does, on the real proxy data when ../shared/data is present, and prints seconds
per candidate and per epoch. On a CPU the paper's 20 (CNN) / 10 (RNN) epochs take long: pass
--epochs to cap them; per-epoch time is what scales.

    python bench/bench_candidate.py --task cnn --epochs 2 --candidates 2
    python bench/bench_candidate.py --task rnn --candidates 1 --threads 1   # full 10 epochs, PTB proxy
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.search.config import preset_config  # noqa: E402
from core.device import default_threads, describe, resolve_device  # noqa: E402
from core.cell.genotype import Genotype  # noqa: E402
from core.search.candidates import init_seed
from core.search.tasks import make_task  # noqa: E402
from core.search.loop import step_candidates  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
REAL = {"cnn": (SHARED / "cifar10" / "cifar-10-batches-py", "cifar10:{}"),
        "rnn": (SHARED / "ptb-proxy", "ptb-proxy:{}")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("cnn", "rnn"), default="cnn")
    ap.add_argument("--epochs", type=int, help="cap epochs (default: the paper's)")
    ap.add_argument("--candidates", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    path, fmt = REAL[args.task]
    data = fmt.format(path) if path.exists() else ("digits" if args.task == "cnn" else "embedded")
    cfg = preset_config(args.task, "paper", data=data, device=args.device, evaluator="single",
                        epochs=args.epochs, threads=args.threads)
    torch.set_num_threads(cfg.threads or default_threads())
    device = resolve_device(cfg.device)
    task = make_task(cfg, device, lambda m: None)
    dense = Genotype.dense(cfg.task, cfg.nodes, cfg.seed)
    rows = []
    for idx, edge in enumerate(step_candidates(dense, args.candidates, cfg.seed, 1)):
        g = dense.without_edge(edge)
        t0 = time.time()
        res = task.train(task.build(g, init_seed(1, idx)), 1, lambda: False, lambda row: None)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.time() - t0
        quality = res.accuracy if args.task == "cnn" else res.perplexity
        rows.append(dict(edge=f"{edge[0]}-{edge[1]}", seconds=round(wall, 2), epochs=res.epochs,
                         s_per_epoch=round(wall / max(res.epochs, 1), 2), quality=quality,
                         stop=res.stop_reason))
        print(json.dumps(rows[-1]), flush=True)
    print(f"task {cfg.task} | data {data} | device {describe(device)} | epochs cap {cfg.epochs} | "
          f"median {statistics.median(r['seconds'] for r in rows):.1f} s/candidate, "
          f"{statistics.median(r['s_per_epoch'] for r in rows):.1f} s/epoch")


if __name__ == "__main__":
    main()
