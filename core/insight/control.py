"""Reading a run against its random control: does the chosen cell beat chance at its edge count?

For each count the control drew, the chosen snapshot with that many edges is compared with the
random cells asked for that count, by score (what the search maximises). A win counts as
"beyond the noise" when the score gap is larger than the run's measured noise, carried into
score units (CNN: the accuracy std as is; RNN: 0.25 x the perplexity std, the score's weight).
Plain dicts, so the CLI, the pages and the tests share them.
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Sequence

from core.search.noise import noise_std
from core.store.controls import ControlCell
from core.store.runs import StepRecord

QUALITY_KEY = {"cnn": "accuracy", "rnn": "perplexity"}
SCORE_PER_QUALITY = {"cnn": 1.0, "rnn": 0.25}  # d score / d quality (magnitude), from the score formulas


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def score_noise(noise: dict | None, task: str) -> float | None:
    """The measured quality noise in score units; None when the run did not measure it."""
    std = noise_std(noise)
    return None if std is None else SCORE_PER_QUALITY[task] * std


def chosen_at(steps: Sequence[StepRecord], edges: int) -> StepRecord | None:
    """The chosen snapshot (a step >= 1) with exactly `edges` edges, if the search passed that count."""
    return next((s for s in steps if s.step >= 1 and s.edges == edges), None)


def control_groups(
    steps: Sequence[StepRecord], cells: Sequence[ControlCell], task: str, noise: dict | None
) -> list[dict]:
    """One summary per count (largest first): the chosen cell's score, the random cells' scores
    (mean, min, max), how many the chosen one beats and how many by more than the noise."""
    margin = score_noise(noise, task)
    out = []
    for target in sorted({c.target for c in cells}, reverse=True):
        group = [c for c in cells if c.target == target]
        scores = [c.score for c in group if c.status == "ok" and _finite(c.score)]
        chosen = chosen_at(steps, target)
        mine = chosen.score if chosen is not None and _finite(chosen.score) else None
        beats = None if mine is None else sum(mine > s for s in scores)
        beyond = None if mine is None or margin is None else sum(mine - s > margin for s in scores)
        out.append(
            {
                "target": target,
                "cells": len(group),
                "scored": len(scores),
                "overshoot": sum(c.edges < target for c in group),
                "chosen_step": chosen.step if chosen else None,
                "chosen_score": mine,
                "mean": fmean(scores) if scores else None,
                "min": min(scores, default=None),
                "max": max(scores, default=None),
                "beats": beats,
                "beats_beyond_noise": beyond,
                "noise_score": margin,
            }
        )
    return out


def group_at(groups: Sequence[dict], edges: int) -> dict | None:
    return next((g for g in groups if g["target"] == edges), None)


def control_sentence(group: dict) -> str:
    """'The chosen 6-edge cell scores 1.025; 5 random 6-edge cells score 0.980 (0.950-1.010);
    it beats 5 of 5, 3 of them by more than the noise.'"""
    t, n = group["target"], group["scored"]
    if not n:
        return f"No random {t}-edge cell of the control has a score yet."
    pruned = f" ({group['overshoot']} pruned below {t})" if group["overshoot"] else ""
    randoms = (
        f"{n} random {t}-edge cell{'s' if n > 1 else ''}{pruned} score{'' if n > 1 else 's'} "
        f"{group['mean']:.3f} ({group['min']:.3f}–{group['max']:.3f})"
        if n > 1
        else f"1 random {t}-edge cell{pruned} scores {group['mean']:.3f}"
    )
    if group["chosen_score"] is None:
        return f"The search has no {t}-edge snapshot; {randoms}."
    head = f"The chosen {t}-edge cell scores {group['chosen_score']:.3f}; {randoms}; it beats {group['beats']} of {n}"
    if group["beats_beyond_noise"] is None:
        return head + " (the run did not measure its noise)."
    return head + f", {group['beats_beyond_noise']} of them by more than the noise."


def control_points(cells: Sequence[ControlCell], task: str) -> list[dict]:
    """The scored random cells as Trade-offs points (quality, costs, score, counts)."""
    key = QUALITY_KEY[task]
    return [
        {
            "target": c.target,
            "sample": c.sample,
            "edges": c.edges,
            "quality": getattr(c, key),
            "macs": c.macs,
            "flops": c.flops,
            "params": c.params,
            "score": c.score,
        }
        for c in cells
        if c.status == "ok" and _finite(getattr(c, key))
    ]
