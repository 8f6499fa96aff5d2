"""Words and tables for one shrink step: the candidate table and why its edge went.

Both work on candidate dicts (CandidateRecord.to_dict(), which is also what a live run
keeps in its progress JSON), so a committed step and a step still in progress read the
same. Rows are plain dicts (no pandas) so the app, a CSV writer and tests all take them.
"""

from __future__ import annotations

import math
from typing import Sequence

from core.cell.genotype import Edge, edge_str
from core.insight.format import fmt_si
from core.insight.noise import COST, NOISE, decided_by, noise_marks, noise_text, within_noise

CHOSEN_MARK = "◀ removed"
BASELINE_MARK = "◀ start"


def si(value: float | int | None) -> str:
    """Short human number (see core.insight.format.fmt_si, the one writer)."""
    return fmt_si(value)


def _edge(d: dict) -> Edge | None:
    e = d.get("edge")
    return None if e is None else (int(e[0]), int(e[1]))


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def candidate_rows(
    candidates: Sequence[dict], removed: Edge | None, task: str, noise: dict | None = None
) -> list[dict]:
    """One row per candidate, in training order; the chosen one is marked.

    Column names carry their units so the same rows read right in a table and a CSV. With a
    measured noise, a "vs chosen" column marks the candidates whose quality is within noise
    of the chosen one (of the best so far while a step is in progress).
    """
    rows = []
    marks = noise_marks(candidates, _reference(candidates, removed), task, noise) if noise_text(noise, task) else None
    for i, c in enumerate(candidates):
        edge = _edge(c)
        chosen = edge == removed and c.get("status") == "ok"
        mark = (BASELINE_MARK if edge is None else CHOSEN_MARK) if chosen else ""
        row = {
            "chosen": mark,
            "edge": "dense" if edge is None else edge_str(edge),
            "score": _round(c.get("score"), 4),
        }  # first: it decides the step (never cut off)
        if task == "rnn":
            row["perplexity"] = _round(c.get("perplexity"), 2)
            row["FLOPs"] = c.get("flops")
        else:
            acc = c.get("accuracy")
            row["accuracy %"] = None if not _finite(acc) else round(100 * acc, 2)
            row["MACs"] = c.get("macs")
        row.update(
            {
                "params": c.get("params"),
                "edges left": c.get("edges_left"),
                "epochs": c.get("epochs"),
                "stop reason": c.get("error") or c.get("stop_reason", ""),
                "time s": _round(c.get("wall_s"), 1),
                "status": c.get("status"),
            }
        )
        if c.get("worker"):  # trained on a Ray cluster: which node (and GPU)
            row["worker"] = c["worker"]
        if marks is not None:
            row["vs chosen"] = marks[i]
        rows.append(row)
    return rows


def _reference(candidates: Sequence[dict], removed: Edge | None) -> dict | None:
    """The candidate the others are measured against: the chosen one, else the best score."""
    ok = [c for c in candidates if c.get("status") == "ok" and _finite(c.get("score"))]
    chosen = [c for c in ok if removed is not None and _edge(c) == tuple(removed)]
    return chosen[0] if chosen else max(ok, key=lambda c: c["score"], default=None)


def _round(x: float | None, digits: int) -> float | None:
    return round(x, digits) if _finite(x) else None


def why_removed(
    removed: Edge | None,
    candidates: Sequence[dict],
    task: str,
    edges_before: int | None = None,
    noise: dict | None = None,
) -> str:
    """One plain sentence: why this step's edge went, against the runner-up.

    edges_before: the DAG's edge count before the step, so the sentence can say when
    pruning took more edges than the one removed. noise: the run's measured noise, so the
    sentence can say when the gap is within it and when the cost term decided the step.
    """
    if removed is None:
        measured = noise_text(noise, task)
        return "Step 0 trains the dense starting DAG as the baseline; no edge was removed." + (
            f" It was trained with {noise.get('seeds')} seeds to measure the noise: {measured}; "
            "gaps smaller than that are marked 'within noise'."
            if measured
            else ""
        )
    scored = sorted((c for c in candidates if _finite(c.get("score"))), key=lambda c: -c["score"])
    chosen = next((c for c in scored if _edge(c) == tuple(removed)), None)
    if chosen is None:
        return f"Edge {edge_str(removed)} was removed, but its candidate has no score in the store."
    head = f"Removing {edge_str(removed)} scored best ({chosen['score']:.4f})"
    others = [c for c in scored if c is not chosen]
    if not others:
        alone = "it was the only candidate that trained" if len(candidates) > 1 else "it was the only candidate"
        return f"{head}: {alone}{_pruned_note(chosen, edges_before)}."
    runner = others[0]
    return (
        f"{head}, {chosen['score'] - runner['score']:.4f} ahead of {edge_str(_edge(runner))}: "
        f"{_quality_vs(chosen, runner, task)} and {_cost_vs(chosen, runner, task)}{_pruned_note(chosen, edges_before)}."
        + _decided_note(chosen, runner, task, noise)
    )


def _decided_note(chosen: dict, runner: dict, task: str, noise: dict | None) -> str:
    """What decided the step, against the measured noise (empty when quality did)."""
    within = within_noise(chosen, runner, task, noise)
    gap = f" (the quality gap is within the measured noise, {noise_text(noise, task)})" if within else ""
    verdict = decided_by(chosen, runner, task, noise)
    if verdict == COST:
        return f" The cost term, not quality, decided this step{gap}."
    if verdict == NOISE:
        return f" The quality gap is within the measured noise ({noise_text(noise, task)}): it could go either way."
    return ""


def _quality_vs(a: dict, b: dict, task: str) -> str:
    if task == "rnn":
        pa, pb = a.get("perplexity"), b.get("perplexity")
        if not (_finite(pa) and _finite(pb)):
            return "perplexity not comparable"
        if abs(pa - pb) < 0.005:
            return f"the same perplexity ({pa:.2f})"
        word = "lower" if pa < pb else "higher"
        return f"{abs(pa - pb):.2f} {word} perplexity ({pa:.2f} vs {pb:.2f})"
    aa, ab = a.get("accuracy"), b.get("accuracy")
    if not (_finite(aa) and _finite(ab)):
        return "accuracy not comparable"
    diff = 100 * (aa - ab)
    if abs(diff) < 0.005:
        return f"the same accuracy ({100 * aa:.1f}%)"
    word = "more" if diff > 0 else "less"
    return f"{abs(diff):.1f} points {word} accuracy ({100 * aa:.1f}% vs {100 * ab:.1f}%)"


def _cost_vs(a: dict, b: dict, task: str) -> str:
    key, unit = ("flops", "FLOPs") if task == "rnn" else ("macs", "MACs")
    ca, cb = a.get(key), b.get(key)
    if ca is None or cb is None:
        return f"{unit} not comparable"
    if ca == cb:
        return f"the same {unit} ({si(ca)})"
    word = "fewer" if ca < cb else "more"
    pct = 100 * abs(ca - cb) / cb if cb else 0.0
    return f"{si(abs(ca - cb))} {word} {unit} ({si(ca)} vs {si(cb)}, {pct:.0f}%)"


def _pruned_note(c: dict, before: int | None) -> str:
    """Pruning can take more than the removed edge; say how many went with it."""
    after = c.get("edges_left")
    if before is None or after is None or before - after <= 1:
        return ""
    extra = before - after - 1
    return f"; pruning took {extra} more edge{'s' if extra > 1 else ''} with it"
