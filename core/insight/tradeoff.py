"""Quality against cost for a run: the candidate cloud, its Pareto front, the per-step series.

Direction matters: CNN accuracy is maximised, RNN perplexity minimised, cost always
minimised. Everything here is plain data (lists of dicts) so the figure builders, the CSV
export and the tests share it; nothing draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from core.cell.genotype import edge_str
from core.store.runs import CandidateRecord, StepRecord, best_of


@dataclass(frozen=True)
class Quality:
    """The measured figure of a task and which way is better."""

    key: str
    label: str
    higher_is_better: bool


QUALITY = {"cnn": Quality("accuracy", "proxy accuracy", True), "rnn": Quality("perplexity", "proxy perplexity", False)}
# Cost axes a task offers, first = the one its score uses.
COSTS = {"cnn": (("macs", "MACs"), ("params", "params")), "rnn": (("flops", "FLOPs"), ("params", "params"))}


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def pareto_front(points: Sequence[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the non-dominated (cost, quality) points, by rising cost.

    A point is on the front if no other point is at most as costly and strictly better,
    or strictly cheaper and at least as good. Among exact duplicates the first is kept.
    """
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -sign * points[i][1], i))
    front, best = [], -math.inf
    for i in order:
        q = sign * points[i][1]
        if q > best:
            front.append(i)
            best = q
    return front


def candidate_points(candidates: Sequence[CandidateRecord], steps: Sequence[StepRecord], task: str) -> list[dict]:
    """Every scored candidate with its step, edge, quality, costs and whether it was chosen."""
    removed = {s.step: s.removed for s in steps}
    quality = QUALITY[task].key
    out = []
    for c in candidates:
        q = getattr(c, quality)
        if c.status != "ok" or not _ok(q):
            continue
        out.append(
            {
                "step": c.step,
                "idx": c.idx,
                "edge": "dense" if c.edge is None else edge_str(c.edge),
                "quality": q,
                "macs": c.macs,
                "flops": c.flops,
                "params": c.params,
                "score": c.score,
                "edges": c.genotype.num_edges,
                "chosen": c.step in removed and removed[c.step] == c.edge,
            }
        )
    return out


def front_of(points: Sequence[dict], cost_key: str, task: str) -> list[dict]:
    """The Pareto-optimal subset of `points` for this cost axis, by rising cost."""
    usable = [p for p in points if p.get(cost_key) is not None]
    idx = pareto_front([(p[cost_key], p["quality"]) for p in usable], QUALITY[task].higher_is_better)
    return [usable[i] for i in idx]


def step_series(steps: Sequence[StepRecord], task: str) -> list[dict]:
    """One row per committed step (the chosen snapshots in order), the best one flagged."""
    best = best_of(list(steps))
    quality = QUALITY[task].key
    return [
        {
            "step": s.step,
            "removed": "-" if s.removed is None else edge_str(s.removed),
            "edges": s.edges,
            "score": s.score,
            "quality": getattr(s, quality),
            "macs": s.macs,
            "flops": s.flops,
            "params": s.params,
            "wall_s": s.wall_s,
            "best": best is not None and s.step == best.step,
        }
        for s in steps
    ]


def step_table(steps: Sequence[StepRecord], task: str) -> list[dict]:
    """The step series with user-facing column names, for tables and CSV downloads."""
    q = QUALITY[task]
    cost_key, cost_label = COSTS[task][0]
    rows = []
    for r in step_series(steps, task):
        quality = r["quality"]
        if q.key == "accuracy" and _ok(quality):
            quality = round(100 * quality, 2)
        rows.append(
            {
                "step": r["step"],
                "removed": r["removed"],
                "edges": r["edges"],
                ("accuracy %" if q.key == "accuracy" else "perplexity"): quality,
                cost_label: r[cost_key],
                "params": r["params"],
                "score": None if not _ok(r["score"]) else round(r["score"], 4),
                "time s": round(r["wall_s"], 1),
                "best": "★" if r["best"] else "",
            }
        )
    return rows
