"""Plotly figures for the Trade-offs page, built from core.insight.tradeoff's plain rows.

No streamlit here: a figure is a pure function of the rows, which keeps the page thin and
lets tests and the benchmark build figures without a server.
"""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.insight.tradeoff import COSTS
from ui.charts import line_trace

FRONT_COLOUR, PATH_COLOUR, BEST_COLOUR, CONTROL_COLOUR = "#d62728", "#333333", "#ff7f0e", "#8c8c8c"
CONTROL_NAME = "random cells (control)"


def _quality_values(rows: Sequence[dict], task: str) -> list[float | None]:
    """Accuracy as a percentage (what people read), perplexity as is."""
    if task == "rnn":
        return [r["quality"] for r in rows]
    return [None if r["quality"] is None else 100 * r["quality"] for r in rows]


def _quality_title(task: str) -> str:
    return "proxy perplexity (lower is better)" if task == "rnn" else "proxy accuracy % (higher is better)"


def tradeoff_figure(
    points: Sequence[dict],
    front: Sequence[dict],
    path: Sequence[dict],
    task: str,
    cost_key: str,
    controls: Sequence[dict] = (),
) -> go.Figure:
    """Every candidate (coloured by step), the Pareto front, the path of chosen snapshots and the
    random control's cells as grey crosses (core.insight.control.control_points).

    The cost axis is logarithmic; for perplexity the quality axis is reversed so that
    "better" is up in both tasks and the front always bounds the cloud from the top-left.
    """
    cost_label = dict(COSTS[task])[cost_key]
    q_label = "perplexity" if task == "rnn" else "accuracy %"
    fig = go.Figure()
    fig.add_trace(_candidates_trace(points, task, cost_key, cost_label, q_label))
    fig.add_trace(_front_trace(front, task, cost_key))
    usable = [r for r in path if r.get(cost_key) is not None and r["quality"] is not None]
    fig.add_trace(_path_trace(usable, task, cost_key, cost_label, q_label))
    if controls:
        usable = [c for c in controls if c.get(cost_key) is not None]
        fig.add_trace(_controls_trace(usable, task, cost_key, cost_label, q_label))
    fig.update_xaxes(type="log", title=f"{cost_label} (log scale)")
    fig.update_yaxes(title=_quality_title(task), autorange="reversed" if task == "rnn" else True)
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.08))
    return fig


def _scatter(rows: Sequence[dict], task: str, cost_key: str, mode: str, name: str, **style) -> go.Scatter:
    """Rows placed at (cost, quality as shown): the one mapping every trace of the figure uses."""
    return go.Scatter(x=[r[cost_key] for r in rows], y=_quality_values(rows, task), mode=mode, name=name, **style)


def _candidates_trace(points: Sequence[dict], task: str, cost_key: str, cost_label: str, q_label: str) -> go.Scatter:
    marker = dict(
        size=9,
        color=[p["step"] for p in points],
        colorscale="Viridis",
        showscale=True,
        colorbar=dict(title="step"),
        line=dict(width=[2 if p["chosen"] else 0 for p in points], color="black"),
    )
    hover = (
        f"edge %{{customdata[0]}} (step %{{customdata[1]}})<br>{q_label} %{{y:.2f}}<br>"
        f"{cost_label} %{{x:,.0f}}<br>score %{{customdata[2]:.4f}}<br>"
        "%{customdata[3]} edges left<extra></extra>"
    )
    customdata = [[p["edge"], p["step"], p["score"], p["edges"]] for p in points]
    return _scatter(
        points, task, cost_key, "markers", "candidates", marker=marker, customdata=customdata, hovertemplate=hover
    )


def _front_trace(front: Sequence[dict], task: str, cost_key: str) -> go.Scatter:
    return _scatter(
        front,
        task,
        cost_key,
        "lines+markers",
        "Pareto front",
        line=dict(color=FRONT_COLOUR, width=2, shape="hv"),  # best quality reachable at each cost
        marker=dict(symbol="circle-open", size=14, color=FRONT_COLOUR, line=dict(width=2)),
        hoverinfo="skip",
    )


def _path_trace(usable: Sequence[dict], task: str, cost_key: str, cost_label: str, q_label: str) -> go.Scatter:
    marker = dict(
        symbol=["star" if r["best"] else "diamond" for r in usable],
        size=[16 if r["best"] else 8 for r in usable],
        color=[BEST_COLOUR if r["best"] else PATH_COLOUR for r in usable],
    )
    hover = (
        f"step %{{customdata[1]}}: removed %{{customdata[0]}}<br>{q_label} %{{y:.2f}}<br>"
        f"{cost_label} %{{x:,.0f}}<extra></extra>"
    )
    return _scatter(
        usable,
        task,
        cost_key,
        "lines+markers+text",
        "chosen snapshots",
        line=dict(color=PATH_COLOUR, dash="dot"),
        marker=marker,
        text=[str(r["step"]) for r in usable],
        textposition="top center",
        customdata=[[r["removed"], r["step"]] for r in usable],
        hovertemplate=hover,
    )


def _controls_trace(usable: Sequence[dict], task: str, cost_key: str, cost_label: str, q_label: str) -> go.Scatter:
    hover = (
        f"random cell %{{customdata[3]}} for %{{customdata[0]}} edges (%{{customdata[1]}} after "
        f"pruning)<br>{q_label} %{{y:.2f}}<br>{cost_label} %{{x:,.0f}}<br>score "
        "%{customdata[2]:.4f}<extra></extra>"
    )
    return _scatter(
        usable,
        task,
        cost_key,
        "markers",
        CONTROL_NAME,
        marker=dict(symbol="x", size=10, color=CONTROL_COLOUR, line=dict(width=1, color=CONTROL_COLOUR)),
        customdata=[[c["target"], c["edges"], c["score"], c["sample"]] for c in usable],
        hovertemplate=hover,
    )


def steps_figure(series: Sequence[dict], task: str) -> go.Figure:
    """Score, quality, cost, params and edge count per step, the best snapshot starred."""
    cost_key, cost_label = COSTS[task][0]
    q_label = "perplexity" if task == "rnn" else "accuracy %"
    panels = [
        ("score", [r["score"] for r in series]),
        (q_label, _quality_values(series, task)),
        (cost_label, [r[cost_key] for r in series]),
        ("params", [r["params"] for r in series]),
        ("edges", [r["edges"] for r in series]),
    ]
    fig = make_subplots(
        rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.03, subplot_titles=[p[0] for p in panels]
    )
    steps = [r["step"] for r in series]
    removed = [r["removed"] for r in series]
    best = [i for i, r in enumerate(series) if r["best"]]
    for row, (name, values) in enumerate(panels, start=1):
        hover = f"step %{{x}}: removed %{{customdata}}<br>{name} %{{y}}<extra></extra>"
        style = dict(showlegend=False, customdata=removed, line=dict(color=PATH_COLOUR))
        fig.add_trace(line_trace(steps, values, name, hover, **style), row=row, col=1)
        if best:
            fig.add_trace(_best_star(steps[best[0]], values[best[0]], legend=row == 1), row=row, col=1)
    if task == "rnn":
        fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_xaxes(title="step", row=len(panels), col=1, dtick=1)
    fig.update_layout(height=760, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _best_star(step: int, value, legend: bool) -> go.Scatter:
    return go.Scatter(
        x=[step],
        y=[value],
        mode="markers",
        name="best snapshot",
        showlegend=legend,
        marker=dict(symbol="star", size=16, color=BEST_COLOUR),
        hovertemplate=f"best snapshot: step {step}<extra></extra>",
    )
