"""Reading a step against the run's measured noise: is a gap real, and what decided the step?

The noise is the standard deviation of the dense baseline's quality over several seeds
(core.search.noise). A quality gap smaller than it is "within noise": the two cells cannot
be told apart by this proxy training, whatever the table's decimals say.
"""

from __future__ import annotations

import math
from typing import Sequence

from core.search.noise import noise_std

WITHIN = "within noise"
QUALITY, COST, NOISE = "quality", "cost", "noise"


def _q(c: dict, task: str) -> float | None:
    v = c.get("perplexity" if task == "rnn" else "accuracy")
    return v if v is not None and math.isfinite(v) else None


def quality_advantage(a: dict, b: dict, task: str) -> float | None:
    """How much better a's quality is than b's, in the metric's units (positive: a is better)."""
    qa, qb = _q(a, task), _q(b, task)
    if qa is None or qb is None:
        return None
    return qb - qa if task == "rnn" else qa - qb


def within_noise(a: dict, b: dict, task: str, noise: dict | None) -> bool:
    """True when the run measured its noise and a and b differ in quality by less than it."""
    std, adv = noise_std(noise), quality_advantage(a, b, task)
    return std is not None and adv is not None and abs(adv) < std


def decided_by(chosen: dict, runner: dict, task: str, noise: dict | None) -> str:
    """QUALITY: the chosen cell is better beyond the noise (or simply better, noise unknown);
    COST: its quality is not (measurably) better, its cost term is smaller; NOISE: neither."""
    adv = quality_advantage(chosen, runner, task)
    std = noise_std(noise) or 0.0
    if adv is not None and adv > std:
        return QUALITY
    key = "flops" if task == "rnn" else "macs"
    ca, cb = chosen.get(key), runner.get(key)
    if ca is not None and cb is not None and ca < cb:
        return COST
    return NOISE


def noise_text(noise: dict | None, task: str) -> str:
    """'accuracy std 0.8 points over 3 seeds' / 'perplexity std 1.2 over 3 seeds'; '' if not measured."""
    std = noise_std(noise)
    if std is None:
        return ""
    amount = f"{100 * std:.2f} points" if task == "cnn" else f"{std:.2f}"
    metric = "accuracy" if task == "cnn" else "perplexity"
    return f"{metric} std {amount} over {noise.get('seeds')} seeds"


def noise_marks(candidates: Sequence[dict], reference: dict | None, task: str, noise: dict | None) -> list[str]:
    """Per candidate: WITHIN when its quality is within noise of the reference (the chosen or
    best candidate), else ''; the reference itself gets ''."""
    if reference is None:
        return ["" for _ in candidates]
    return [WITHIN if c is not reference and within_noise(c, reference, task, noise) else "" for c in candidates]


def step_verdict(removed, candidates: Sequence[dict], task: str, noise: dict | None) -> str:
    """For a step table: what decided the step ('quality', 'cost', 'within noise'), '' for step 0
    or a step with a single scored candidate."""
    if removed is None:
        return ""
    scored = sorted(
        (c for c in candidates if c.get("score") is not None and math.isfinite(c["score"])), key=lambda c: -c["score"]
    )
    chosen = next((c for c in scored if c.get("edge") is not None and tuple(c["edge"]) == tuple(removed)), None)
    others = [c for c in scored if c is not chosen]
    if chosen is None or not others:
        return ""
    verdict = decided_by(chosen, others[0], task, noise)
    if verdict == COST:
        return "cost (quality " + ("within noise)" if within_noise(chosen, others[0], task, noise) else "not better)")
    return WITHIN if verdict == NOISE else QUALITY
