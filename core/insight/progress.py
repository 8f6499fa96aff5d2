"""How far a search is, in edges: removed so far, left to the stop rule's target, and an ETA.

Steps are the wrong unit: pruning can take several edges in one step, so "2 of 21 steps"
ended at 15 and "5 of 8" at 6. Edges are what the stop rule counts
(edges <= round(keep_fraction x initial edges)), so progress and ETA count them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean
from typing import Sequence

from core.search.config import SearchConfig
from core.store.lifecycle import RunStatus
from core.store.runs import RunRecord, StepRecord


@dataclass(frozen=True)
class EdgeProgress:
    initial: int  # edges of the dense start
    current: int  # edges of the last committed snapshot
    target: int  # the stop rule's edge count (at least 1)
    finished: bool

    @property
    def removed(self) -> int:
        return self.initial - self.current

    @property
    def to_go(self) -> int:
        return 0 if self.finished else max(self.current - self.target, 0)

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        return min(1.0, self.removed / max(self.initial - self.target, 1))

    def text(self) -> str:
        if self.finished:
            return f"finished: {self.removed} of {self.initial} edges removed, {self.current} left"
        return (
            f"{self.removed} of {self.initial - self.target} edges removed · {self.to_go} left to the "
            f"target of {self.target} edges"
        )


def edge_progress(run: RunRecord, steps: Sequence[StepRecord]) -> EdgeProgress:
    cfg = SearchConfig.from_dict(run.config)
    initial = cfg.nodes * (cfg.nodes - 1) // 2
    current = steps[-1].edges if steps else initial
    return EdgeProgress(initial, current, max(cfg.target_edges(), 1), run.status == RunStatus.FINISHED)


def edges_per_step(steps: Sequence[StepRecord]) -> float:
    """Mean edges one step has taken so far (pruning makes it >= 1); 1 before any removal."""
    drops = [a.edges - b.edges for a, b in zip(steps, steps[1:])]
    return max(fmean(drops), 1.0) if drops else 1.0


def eta_seconds(run: RunRecord, steps: Sequence[StepRecord], candidate_times: Sequence[float]) -> float | None:
    """Seconds left: the running step's untrained candidates plus the steps still needed to
    reach the target edge count at the pace edges have gone so far (each trains
    min(k, edges) candidates), times the mean candidate time. None until one is timed."""
    if not candidate_times or not run.status.live:
        return None
    cfg, p = SearchConfig.from_dict(run.config), run.progress
    prog = edge_progress(run, steps)
    left_now = max(p.k - p.candidate, 0)
    running = p.active and p.step == len(steps)
    if not steps:  # the dense baseline is one candidate, then every removal is still ahead
        left_now, edges_after = (left_now if running else 1), prog.initial
    else:
        edges_after = prog.current - (edges_per_step(steps) if running else 0)
    future = math.ceil(max(edges_after - prog.target, 0) / edges_per_step(steps))
    if cfg.max_steps:
        future = min(future, max(cfg.max_steps - len(steps) + 1 - (1 if running else 0), 0))
    later = sum(min(cfg.k, max(int(edges_after - j * edges_per_step(steps)), 1)) for j in range(future))
    return (left_now + later) * fmean(candidate_times)
