"""Shared chart widgets: a step's candidates as score bars (Presenter, Predict) and one
candidate's training curves (Explorer). The Trade-offs figures are in ui.figures, the Train
page's in ui.train.figures.

No streamlit here: a figure is a pure function of the candidates, so pages place it and tests
build it without a server.
"""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.cell.genotype import edge_str
from core.insight.draw import CANDIDATE, REMOVED
from core.insight.format import SCORE_FORMULA

PICK_COLOUR = "#7b3294"


def score_bars(cands: Sequence[dict], removed, task: str, pick=None, height: int = 320) -> go.Figure:
    """The step's candidates as horizontal score bars, best on top; the removed edge red and a
    student's pick (Predict) purple. Failed candidates have no bar and say so."""
    scored = sorted((c for c in cands if c.get("edge") is not None), key=lambda c: _score(c))
    edges = [tuple(c["edge"]) for c in scored]
    colours = [REMOVED if e == removed else PICK_COLOUR if e == pick else CANDIDATE for e in edges]
    values = [_score(c) for c in scored]
    fig = go.Figure(
        go.Bar(
            x=[v if v > -math.inf else None for v in values],
            y=[edge_str(e) for e in edges],
            orientation="h",
            marker_color=colours,
            text=[f"{v:.4f}" if v > -math.inf else "failed" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="edge %{y}: score %{x:.4f}<extra></extra>",
        )
    )
    finite = [v for v in values if v > -math.inf]
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(hi - lo, 1e-3) * 0.25
        fig.update_xaxes(range=[lo - pad, hi + pad])
    fig.update_xaxes(title="score (" + SCORE_FORMULA[task].split(",")[0].removeprefix("score = ") + ")")
    fig.update_yaxes(type="category", tickfont=dict(size=16))
    fig.update_layout(height=height, margin=dict(l=10, r=40, t=10, b=10), showlegend=False, font=dict(size=15))
    return fig


def _score(c: dict) -> float:
    s = c.get("score")
    return s if s is not None and math.isfinite(s) else -math.inf


def line_trace(x: Sequence, y: Sequence, name: str, hovertemplate: str, **style) -> go.Scatter:
    """A lines+markers curve over steps or epochs: the one trace shape of every per-step and
    per-epoch figure (Explorer curves, Trade-offs steps, Train page)."""
    return go.Scatter(x=x, y=y, mode="lines+markers", name=name, hovertemplate=hovertemplate, **style)


def curves_figure(history: Sequence[dict], task: str) -> go.Figure:
    """Loss (left) and accuracy % or perplexity (right) per epoch; the lr in the hover text."""
    quality = ("train_ppl", "val_ppl", "perplexity") if task == "rnn" else ("train_acc", "val_acc", "accuracy %")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", quality[2]))
    epochs = [r["epoch"] for r in history]
    lrs = [f"lr {r.get('lr', '-')}" for r in history]
    scale = 1 if task == "rnn" else 100
    for col, keys in ((1, ("train_loss", "val_loss")), (2, quality[:2])):
        for key, dash in zip(keys, ("solid", "dot")):
            ys = [None if r.get(key) is None else r[key] * (1 if col == 1 else scale) for r in history]
            trace = line_trace(epochs, ys, key, "epoch %{x}: %{y:.4g} (%{text})", text=lrs, line={"dash": dash})
            fig.add_trace(trace, row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(height=320, margin={"t": 40, "b": 10, "l": 10, "r": 10}, legend={"orientation": "h"})
    return fig
