"""The Explorer's training curves of one candidate the user picks: loss and accuracy (CNN) or
perplexity (RNN) per epoch, train against validation, from the candidate's stored history.

Why: the stop rules (98% running accuracy, divergence, patience, the 4th-epoch floor) decide
a candidate's score from these curves; seeing them shows why a candidate stopped when it did.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.cell.genotype import edge_str
from core.store.runs import CandidateRecord, RunRecord, Store

SELECT_KEY = "explorer_curve_candidate"


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
            fig.add_trace(go.Scatter(x=epochs, y=ys, mode="lines+markers", name=key, text=lrs,
                                     line={"dash": dash}, hovertemplate="epoch %{x}: %{y:.4g} (%{text})"),
                          row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(height=320, margin={"t": 40, "b": 10, "l": 10, "r": 10}, legend={"orientation": "h"})
    return fig


def _label(c: CandidateRecord) -> str:
    score = "-" if c.score is None else f"{c.score:.4f}"
    return f"step {c.step} · edge {edge_str(c.edge)} · score {score} · {c.epochs} epochs ({c.stop_reason or c.status})"


def candidate_curves(store: Store, run: RunRecord) -> None:
    """A picker over the run's candidates and the curves of the one picked."""
    cands = [c for c in store.candidates(run.id) if c.history]
    st.subheader("Training curves")
    if not cands:
        st.caption("No candidate has a recorded epoch yet.")
        return
    pick = st.selectbox("Candidate", range(len(cands)), index=len(cands) - 1, key=SELECT_KEY,
                        format_func=lambda i: _label(cands[i]))
    st.plotly_chart(curves_figure(cands[pick].history, run.task), key="explorer_curves")
