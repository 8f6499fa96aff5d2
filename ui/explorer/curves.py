"""The Explorer's training curves of one candidate the user picks: loss and accuracy (CNN) or
perplexity (RNN) per epoch, train against validation, from the candidate's stored history.

Why: the stop rules (98% running accuracy, divergence, patience, the 4th-epoch floor) decide
a candidate's score from these curves; seeing them shows why a candidate stopped when it did.
"""

from __future__ import annotations

import streamlit as st

from core.cell.genotype import edge_str
from core.store.runs import CandidateRecord, RunRecord, Store
from ui.charts import curves_figure

SELECT_KEY = "explorer_curve_candidate"


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
    pick = st.selectbox(
        "Candidate", range(len(cands)), index=len(cands) - 1, key=SELECT_KEY, format_func=lambda i: _label(cands[i])
    )
    st.plotly_chart(curves_figure(cands[pick].history, run.task), key="explorer_curves")
