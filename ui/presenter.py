"""Presenter mode: a full-screen Explorer for a projector. The big DAG on the run's fixed
layout, the step's candidates as score bars, and the one sentence that says why the edge
went. Left/Right arrow keys step (button shortcuts); the address bar always holds a link
to the run, page and step on screen (?run=&step=); a live run is followed like in the
Explorer.
"""

from __future__ import annotations

from html import escape

import streamlit as st

from core.insight.explain import why_removed
from core.insight.format import SCORE_FORMULA
from core.store.runs import RunRecord, StepRecord, Store
from ui.charts import score_bars
from ui.control import step_control_sentence
from ui.dag_view import show_dag
from ui.follow import followed_step, is_live, live_badge
from ui.step_page import shown_step, step_button, step_page, step_title
from ui.urlstate import write_step

STEP_KEY, FOLLOW_KEY = "presenter_step", "presenter_follow"
FULL_SCREEN_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], header[data-testid="stHeader"] {display: none;}
.block-container {padding-top: 0.8rem; padding-bottom: 0.5rem; max-width: 100%;}
.presenter-sentence {font-size: 1.35rem; line-height: 1.35; margin: 0.4rem 0;}
</style>"""


def _move(target: int, last: int) -> None:
    st.session_state[STEP_KEY] = target
    st.session_state[FOLLOW_KEY] = target == last


def presenter(store: Store, run: RunRecord | None) -> None:
    st.html(FULL_SCREEN_CSS)
    step_page(
        store,
        run,
        "presenter",
        _slide,
        "No run to present yet: start one on the Search page.",
        f"Run {run.id if run else '-'} has no committed step yet.",
    )


def _slide(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    last = steps[-1].step
    n = followed_step(run, last, STEP_KEY, FOLLOW_KEY, st.session_state.get(STEP_KEY, last) == last)
    write_step(n, following=is_live(run) and st.session_state[FOLLOW_KEY])
    shown = shown_step(store, run, steps, n)
    step = shown.step
    _header(run, n, last)
    cands, tried = shown.cands, shown.tried
    sentence = why_removed(step.removed, cands, run.task, shown.edges_before)
    left, right = st.columns([5, 2], gap="medium")
    with left:
        show_dag(
            shown.parent,
            shown.layout,
            candidates=tried,
            removed=step.removed,
            start=shown.start,
            show_earlier=True,
            title=step_title(step),
        )
    with right:
        st.html(f"<p class='presenter-sentence'>{escape(sentence)}</p>")
        against_chance = step_control_sentence(store, run, step)
        if against_chance:
            st.html(f"<p class='presenter-sentence presenter-control'>{escape(against_chance)}</p>")
        if tried:
            st.plotly_chart(
                score_bars(cands, step.removed, run.task, height=40 + 34 * len(tried)),
                width="stretch",
                key="presenter_bars",
            )
        st.caption(f"{SCORE_FORMULA[run.task]}. Arrow keys ← → step through.")


def _header(run: RunRecord, n: int, last: int) -> None:
    """The slide's title row: run and step, the live badge, Previous / Next and the way out."""
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f"### Run #{run.id}{' · ' + run.name if run.name else ''} · step {n} of {last}")
        live_badge(run)
        step_button(st, "presenter", -1, _move, n, last, "arrow_back")
        step_button(st, "presenter", 1, _move, n, last, "arrow_forward")
        st.page_link("views/explorer.py", label="Leave presenter", icon=":material/close_fullscreen:")
