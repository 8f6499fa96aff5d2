"""Candidate and step tables as shown: numbers compact (3.64M), the score first and defined.

The rows stay numeric (core.insight.explain builds them; CSV downloads keep full values);
only the display is formatted, through column_config, with the score's formula and the
network the costs were measured on in the column help.
"""

from __future__ import annotations

from typing import Sequence

import streamlit as st

from core.insight.format import SCORE_FORMULA
from core.store.runs import RunRecord


def network_note(run: RunRecord) -> str:
    """What a run's MACs/FLOPs were measured on: its own proxy network and data."""
    cfg = run.config
    if run.task == "rnn":
        return f"per token, in this run's language model (e = h = {cfg.get('hidden', 100)}, data {cfg.get('data')})"
    return f"per image, in this run's proxy network (data {cfg.get('data')})"


def column_config(run: RunRecord) -> dict:
    compact = st.column_config.NumberColumn
    note = network_note(run)
    return {
        "score": compact("score", format="%.4f", help=SCORE_FORMULA[run.task] + "; higher is better"),
        "MACs": compact("MACs", format="compact", help=f"multiply-accumulates {note}"),
        "FLOPs": compact("FLOPs", format="compact", help=f"cell FLOPs {note}"),
        "params": compact("params", format="compact", help=f"trainable parameters {note}"),
        "accuracy %": compact("accuracy %", format="%.2f", help="best validation accuracy on the proxy task"),
    }


def candidates_table(rows: Sequence[dict], run: RunRecord, key: str | None = None) -> None:
    st.dataframe(rows, hide_index=True, width="stretch", column_config=column_config(run), key=key)


def score_caption(task: str) -> None:
    st.caption(f"How a step decides: {SCORE_FORMULA[task]}. The candidate with the highest score is removed.")
