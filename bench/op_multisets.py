"""How often each op multiset starts a search: the starting RNN (or CNN) cells of seeds 0..N-1.

The official RNN search draws every node's op independently and uniformly, so the starting
cell can hold any multiset of the four ops; this prints how often each appears, to show
which published cells (ShrinkRNN: tanh x2, sigmoid x2, identity x2) a seed range can start from.

    python bench/op_multisets.py                  # rnn, N=6, seeds 0-999
    python bench/op_multisets.py --task cnn --nodes 8
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cell.genotype import Genotype  # noqa: E402


def multiset_counts(task: str, nodes: int, seeds: int, skip_node0: bool) -> Counter:
    """Counter of sorted op tuples over the dense starting cells of seeds 0..seeds-1."""
    counts: Counter = Counter()
    for seed in range(seeds):
        ops = Genotype.dense(task, nodes, seed).ops
        counts[tuple(sorted(ops[1:] if skip_node0 else ops))] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("cnn", "rnn"), default="rnn")
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument(
        "--skip-node0", action="store_true", help="count nodes 1..N-1 only (node 0's op is never used by the cell)"
    )
    args = ap.parse_args()
    counts = multiset_counts(args.task, args.nodes, args.seeds, args.skip_node0)
    nodes = "nodes 1.." if args.skip_node0 else "nodes 0.."
    print(
        f"{args.task}, N={args.nodes} ({nodes}{args.nodes - 1}), seeds 0-{args.seeds - 1}: "
        f"{len(counts)} distinct op multisets"
    )
    print("| count | share | multiset |\n| ---: | ---: | --- |")
    for ops, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        label = ", ".join(f"{op} x{c}" for op, c in sorted(Counter(ops).items()))
        print(f"| {n} | {n / args.seeds:.1%} | {label} |")


if __name__ == "__main__":
    main()
