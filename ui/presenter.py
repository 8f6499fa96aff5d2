"""Presenter mode: a full-screen Explorer for a projector. The big DAG on the run's fixed
layout, the step's candidates as score bars, and the one sentence that says why the edge
went. Left/Right arrow keys step (button shortcuts); the address bar always holds a link
to the run, page and step on screen (?run=&step=); a live run is followed like in the
Explorer.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

import plotly.graph_objects as go
import streamlit as st

from core.cell.genotype import edge_str
from core.insight.draw import CANDIDATE, REMOVED
from core.insight.explain import why_removed
from core.insight.format import SCORE_FORMULA
from core.store.runs import RunRecord, Store
from ui.control import step_control_sentence
from ui.dag_view import run_layout, show_dag
from ui.follow import followed_step, is_live, live_badge, refresh_every, reread
from ui.step_view import step_title
from ui.urlstate import write_step

STEP_KEY, FOLLOW_KEY = "presenter_step", "presenter_follow"
PICK_COLOUR = "#7b3294"
FULL_SCREEN_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"] {display: none;}
.block-container {padding-top: 0.8rem; padding-bottom: 0.5rem; max-width: 100%;}
.presenter-sentence {font-size: 1.35rem; line-height: 1.35; margin: 0.4rem 0;}
</style>"""


def score_bars(cands: Sequence[dict], removed, task: str, pick=None, height: int = 320) -> go.Figure:
    """The step's candidates as horizontal score bars, best on top; the removed edge red and a
    student's pick (Predict) purple. Failed candidates have no bar and say so."""
    scored = sorted((c for c in cands if c.get("edge") is not None), key=lambda c: _score(c))
    edges = [tuple(c["edge"]) for c in scored]
    colours = [REMOVED if e == removed else PICK_COLOUR if e == pick else CANDIDATE for e in edges]
    values = [_score(c) for c in scored]
    fig = go.Figure(go.Bar(
        x=[v if v > -math.inf else None for v in values], y=[edge_str(e) for e in edges], orientation="h",
        marker_color=colours, text=[f"{v:.4f}" if v > -math.inf else "failed" for v in values],
        textposition="outside", cliponaxis=False, hovertemplate="edge %{y}: score %{x:.4f}<extra></extra>"))
    finite = [v for v in values if v > -math.inf]
    if finite:
        lo, hi = min(finite), max(finite)
        pad = max(hi - lo, 1e-3) * 0.25
        fig.update_xaxes(range=[lo - pad, hi + pad])
    fig.update_xaxes(title="score (" + SCORE_FORMULA[task].split(",")[0].removeprefix("score = ") + ")")
    fig.update_yaxes(type="category", tickfont=dict(size=16))
    fig.update_layout(height=height, margin=dict(l=10, r=40, t=10, b=10), showlegend=False,
                      font=dict(size=15))
    return fig


def _score(c: dict) -> float:
    s = c.get("score")
    return s if s is not None and math.isfinite(s) else -math.inf


def _move(delta: int, last: int) -> None:
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 0) + delta, 0), last)
    st.session_state[FOLLOW_KEY] = st.session_state[STEP_KEY] == last


def presenter(store: Store, run: RunRecord | None) -> None:
    st.html(FULL_SCREEN_CSS)
    if run is None:
        st.info("No run to present yet: start one on the Search page.")
        return
    st.fragment(_slide, run_every=refresh_every(run))(store, run)


def _slide(store: Store, run: RunRecord) -> None:
    run = reread(run, "presenter")
    steps = store.steps(run.id)
    if not steps:
        live_badge(run)
        st.info(f"Run {run.id} has no committed step yet.")
        return
    last = steps[-1].step
    n = followed_step(run, last, STEP_KEY, FOLLOW_KEY, st.session_state.get(STEP_KEY, last) == last)
    write_step(n, following=is_live(run) and st.session_state[FOLLOW_KEY])
    step = steps[n]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f"### Run #{run.id}{' · ' + run.name if run.name else ''} · step {n} of {last}")
        live_badge(run)
        st.button("Previous", key="presenter_prev", on_click=_move, args=(-1, last), shortcut="Left",
                  icon=":material/arrow_back:", disabled=n <= 0)
        st.button("Next", key="presenter_next", on_click=_move, args=(1, last), shortcut="Right",
                  icon=":material/arrow_forward:", disabled=n >= last)
        st.page_link("views/explorer.py", label="Leave presenter", icon=":material/close_fullscreen:")
    parent = steps[n - 1].genotype if n > 0 else step.genotype
    cands = [c.to_dict() for c in store.candidates(run.id, n)]
    tried = [tuple(c["edge"]) for c in cands if c["edge"] is not None]
    sentence = why_removed(step.removed, cands, run.task, steps[n - 1].edges if n > 0 else None)
    left, right = st.columns([5, 2], gap="medium")
    with left:
        show_dag(parent, run_layout(run, steps[0].genotype), candidates=tried, removed=step.removed,
                 start=steps[0].genotype, show_earlier=True, title=step_title(step))
    with right:
        st.html(f"<p class='presenter-sentence'>{escape(sentence)}</p>")
        against_chance = step_control_sentence(store, run, step)
        if against_chance:
            st.html(f"<p class='presenter-sentence presenter-control'>{escape(against_chance)}</p>")
        if tried:
            st.plotly_chart(score_bars(cands, step.removed, run.task, height=40 + 34 * len(tried)),
                            width="stretch", key="presenter_bars")
        st.caption(f"{SCORE_FORMULA[run.task]}. Arrow keys ← → step through.")
