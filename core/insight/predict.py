"""Predict the edge: a student picks the candidate they think AutoShrink removes, then the
pick is scored against the step's real candidate scores.

Only a step's k candidates can be removed (the search never looks at other edges), so a
pick is one of them. Rank 1 means the student picked the removed edge; the gap is how far
the pick's score fell short of the winner's, in score units (see format.SCORE_FORMULA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from core.cell.genotype import Edge, edge_str


@dataclass(frozen=True)
class PickResult:
    step: int
    pick: Edge
    removed: Edge
    rank: int  # 1 = the pick was the removed edge; ties share the better rank
    of: int  # candidates that trained and have a score
    gap: float | None  # removed edge's score - pick's score (>= 0); None if the pick failed to train

    @property
    def hit(self) -> bool:
        return self.pick == self.removed

    def sentence(self) -> str:
        if self.hit:
            return f"Step {self.step}: you picked {edge_str(self.pick)}, the edge AutoShrink removed. Spot on."
        if self.gap is None:
            return (
                f"Step {self.step}: you picked {edge_str(self.pick)}, which failed to train; "
                f"AutoShrink removed {edge_str(self.removed)}."
            )
        return (
            f"Step {self.step}: you picked {edge_str(self.pick)}, ranked {self.rank} of {self.of}, "
            f"{self.gap:.4f} below {edge_str(self.removed)}, which AutoShrink removed."
        )


def _edge(c: dict) -> Edge | None:
    e = c.get("edge")
    return None if e is None else (int(e[0]), int(e[1]))


def _score(c: dict) -> float | None:
    s = c.get("score")
    return s if s is not None and math.isfinite(s) else None


def pick_options(candidates: Sequence[dict]) -> list[Edge]:
    """The edges a student may pick at this step: its candidates, in training order."""
    return [e for e in (_edge(c) for c in candidates) if e is not None]


def score_pick(step: int, pick: Edge, removed: Edge, candidates: Sequence[dict]) -> PickResult:
    """Rank and gap of `pick` among the step's scored candidates."""
    pick, removed = tuple(pick), tuple(removed)
    scores = {_edge(c): _score(c) for c in candidates if _edge(c) is not None}
    if pick not in scores:
        raise ValueError(f"{edge_str(pick)} is not a candidate of step {step}")
    ranked = [s for s in scores.values() if s is not None]
    best = scores.get(removed)
    mine = scores[pick]
    if mine is None:
        return PickResult(step, pick, removed, len(ranked) + 1, len(ranked), None)
    rank = 1 + sum(1 for s in ranked if s > mine)
    gap = max((best if best is not None else max(ranked)) - mine, 0.0)
    return PickResult(step, pick, removed, 1 if pick == removed else rank, len(ranked), gap)


@dataclass(frozen=True)
class Tally:
    picks: int
    hits: int
    mean_rank: float | None
    mean_gap: float | None
    chance: float | None  # expected hits of a random picker over the same steps

    def sentence(self) -> str:
        if not self.picks:
            return "No picks yet."
        chance = f" (a random pick would expect {self.chance:.1f})" if self.chance is not None else ""
        gap = f", mean score gap {self.mean_gap:.4f}" if self.mean_gap is not None else ""
        return f"{self.hits} of {self.picks} right{chance}; mean rank {self.mean_rank:.1f}{gap}."


def tally(results: Iterable[PickResult]) -> Tally:
    results = list(results)
    if not results:
        return Tally(0, 0, None, None, None)
    gaps = [r.gap for r in results if r.gap is not None]
    return Tally(
        len(results),
        sum(r.hit for r in results),
        sum(r.rank for r in results) / len(results),
        sum(gaps) / len(gaps) if gaps else None,
        sum(1 / max(r.of, 1) for r in results),
    )
