"""Plotly curves and the results table of a training job, from its epoch rows (EpochRecord.to_dict).

No streamlit here, like ui/figures.py: a figure is a pure function of the rows, so the
Train page stays thin and tests can check the figure without a server.
"""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.charts import line_trace

TRAIN_COLOUR, VAL_COLOUR, OTHER_COLOUR = "#1f77b4", "#d62728", "#333333"


def _panels(task: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(panel title, [(row key, trace name, colour)]) in display order."""
    quality = (
        [("train_ppl", "train perplexity", TRAIN_COLOUR), ("val_ppl", "validation perplexity", VAL_COLOUR)]
        if task == "rnn"
        else [("train_acc", "train accuracy %", TRAIN_COLOUR), ("val_acc", "validation accuracy %", VAL_COLOUR)]
    )
    pace = "tokens / s" if task == "rnn" else "images / s"
    return [
        ("loss", [("train_loss", "train loss", TRAIN_COLOUR), ("val_loss", "validation loss", VAL_COLOUR)]),
        ("perplexity" if task == "rnn" else "accuracy", quality),
        ("learning rate", [("lr", "learning rate", OTHER_COLOUR)]),
        (pace, [("throughput", pace, OTHER_COLOUR)]),
    ]


def training_figure(rows: Sequence[dict], task: str) -> go.Figure:
    """Loss, accuracy (CNN) or perplexity (RNN), learning rate and throughput per epoch."""
    panels = _panels(task)
    fig = make_subplots(
        rows=2, cols=2, subplot_titles=[title for title, _ in panels], horizontal_spacing=0.08, vertical_spacing=0.14
    )
    epochs = [r["epoch"] for r in rows]
    for n, (title, traces) in enumerate(panels):
        row, col = n // 2 + 1, n % 2 + 1
        for key, name, colour in traces:
            values = [_shown(key, r.get(key)) for r in rows]
            if all(v is None for v in values):
                continue
            hover = f"epoch %{{x}}: {name} %{{y:.4g}}<extra></extra>"
            style = dict(legendgroup=name, showlegend=n < 2, line=dict(color=colour))
            fig.add_trace(line_trace(epochs, values, name, hover, **style), row=row, col=col)
        # whole epochs only; the axis title on the bottom row, where it cannot hit a panel title
        fig.update_xaxes(
            title="epoch" if row == 2 else None, row=row, col=col, tick0=1, dtick=max(1, math.ceil(len(epochs) / 10))
        )
    if task == "rnn":
        fig.update_yaxes(type="log", row=1, col=2)  # perplexity spans orders of magnitude early on
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=1.12))
    return fig


PERCENT = ("train_acc", "val_acc")  # stored as fractions, shown as % like on every other page


def _shown(key: str, value):
    return 100 * value if key in PERCENT and value is not None else value


def result_rows(rows: Sequence[dict]) -> list[dict]:
    """The per-epoch table as shown: columns the task never fills (accuracy for a language
    model, perplexity for a classifier) left out, accuracy in %, numbers rounded for reading."""
    keys = [k for k in (rows[0] if rows else {}) if any(r.get(k) is not None for r in rows)]
    return [
        {
            (f"{k} %" if k in PERCENT else k): round(_shown(k, r[k]), 4) if isinstance(r.get(k), float) else r.get(k)
            for k in keys
        }
        for r in rows
    ]
