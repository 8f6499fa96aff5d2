"""Pareto fronts in both directions, the candidate cloud and the per-step series."""

from __future__ import annotations

import math

from core.cell.genotype import Genotype
from core.insight.tradeoff import candidate_points, front_of, pareto_front, step_series, step_table
from core.store.runs import CandidateRecord, StepRecord
from ui.figures import steps_figure, tradeoff_figure


def test_front_maximising_accuracy() -> None:
    pts = [(100, 0.90), (50, 0.80), (200, 0.95), (150, 0.85), (50, 0.70), (300, 0.95)]
    # (150, .85) is beaten by (100, .90); (50, .70) by (50, .80); (300, .95) by (200, .95).
    assert pareto_front(pts, higher_is_better=True) == [1, 0, 2]


def test_front_minimising_perplexity() -> None:
    pts = [(100, 120.0), (50, 150.0), (200, 110.0), (150, 130.0), (400, 115.0)]
    assert pareto_front(pts, higher_is_better=False) == [1, 0, 2]


def test_front_keeps_one_of_exact_duplicates_and_handles_empty() -> None:
    assert pareto_front([(10, 0.5), (10, 0.5)], True) == [0]
    assert pareto_front([], True) == []


def _dag(edges: int) -> Genotype:
    full = Genotype.dense("cnn", 6, seed=0)
    return Genotype("cnn", full.ops, full.edges[:edges])


def _cand(step: int, idx: int, edge, acc: float | None, macs: int, status: str = "ok") -> CandidateRecord:
    score = None if acc is None else acc - 0.1 * (math.log10(macs) - 6)
    return CandidateRecord(
        step=step,
        idx=idx,
        edge=edge,
        genotype=_dag(10 - step),
        status=status,
        accuracy=acc,
        macs=macs,
        params=macs // 10,
        score=score,
        epochs=3,
    )


def _run() -> tuple[list[StepRecord], list[CandidateRecord]]:
    cands = [
        _cand(0, 0, None, 0.80, 300_000),
        _cand(1, 0, (0, 1), 0.85, 250_000),
        _cand(1, 1, (0, 2), 0.70, 200_000),
        _cand(1, 2, (1, 2), None, 240_000, status="failed"),
        _cand(2, 0, (0, 3), 0.84, 150_000),
        _cand(2, 1, (1, 3), 0.86, 260_000),
    ]
    # each step keeps its best candidate: 0/0, then 1/0 and 2/0
    steps = [StepRecord.from_candidate(n, cands[i], wall_s=0.0) for n, i in enumerate((0, 1, 4))]
    return steps, cands


def test_candidate_points_skip_failures_and_mark_the_chosen() -> None:
    steps, cands = _run()
    points = candidate_points(cands, steps, "cnn")
    assert len(points) == 5  # the failed candidate has no accuracy
    chosen = {(p["step"], p["edge"]) for p in points if p["chosen"]}
    assert chosen == {(0, "dense"), (1, "0-1"), (2, "0-3")}
    front = front_of(points, "macs", "cnn")
    assert [(p["step"], p["edge"]) for p in front] == [(2, "0-3"), (1, "0-1"), (2, "1-3")]


def test_step_series_flags_the_best_snapshot() -> None:
    steps, _ = _run()
    series = step_series(steps, "cnn")
    assert [r["best"] for r in series] == [False, False, True]  # step 2: 0.84 at 150k MACs scores best
    table = step_table(steps, "cnn")
    assert table[2]["best"] == "★" and table[1]["accuracy %"] == 85.0 and table[0]["removed"] == "-"


def test_rnn_series_uses_perplexity() -> None:
    g = Genotype.dense("rnn", 4, seed=0)
    steps = [
        StepRecord(step=0, edges=6, removed=None, genotype=g, score=1.0, perplexity=150.0, flops=60_000),
        StepRecord(
            step=1, edges=5, removed=(0, 1), genotype=g.without_edge((0, 1)), score=2.0, perplexity=140.0, flops=50_000
        ),
    ]
    series = step_series(steps, "rnn")
    assert [r["quality"] for r in series] == [150.0, 140.0] and series[1]["best"]
    assert "perplexity" in step_table(steps, "rnn")[0]


def test_figures_mark_front_path_best_and_direction() -> None:
    steps, cands = _run()
    points, series = candidate_points(cands, steps, "cnn"), step_series(steps, "cnn")
    fig = tradeoff_figure(points, front_of(points, "macs", "cnn"), series, "cnn", "macs")
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["candidates"].x) == 5 and len(by_name["Pareto front"].x) == 3
    assert list(by_name["chosen snapshots"].marker.symbol) == ["diamond", "diamond", "star"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.autorange is True
    assert "edge" in by_name["candidates"].hovertemplate and "step" in by_name["candidates"].hovertemplate
    panels = steps_figure(series, "cnn")
    stars = [t for t in panels.data if t.name == "best snapshot"]
    assert len(stars) == 5 and all(list(t.x) == [2] for t in stars)
