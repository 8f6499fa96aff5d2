"""The Explorer's step-through: slider, play/pause, previous/next; DAG, table and reason.

The view is a fragment so that playing (advancing one step per PLAY_S) and moving the
slider redraw only the view, not the whole app. Play/Pause change the fragment's timer,
so their callbacks ask for a full rerun.
"""
from __future__ import annotations

import time

import streamlit as st

from core.cell.genotype import edge_str
from core.insight.draw import dag_graph
from core.insight.explain import candidate_rows, why_removed
from core.insight.tradeoff import step_table
from core.store.runs import RunRecord, StepRecord, Store
from ui.downloads import dag_with_downloads, table_button

PLAY_S = 1.5
STEP_KEY, PLAYING_KEY, TICK_KEY, EARLIER_KEY = "explorer_step", "explorer_playing", "explorer_tick", \
    "explorer_earlier"


def _move(delta: int, last: int) -> None:
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 0) + delta, 0), last)


def _toggle_play(last: int) -> None:
    playing = not st.session_state.get(PLAYING_KEY, False)
    if playing and st.session_state.get(STEP_KEY, 0) >= last:
        st.session_state[STEP_KEY] = 0  # play from the start when already at the end
    st.session_state[PLAYING_KEY] = playing
    st.session_state[TICK_KEY] = time.time()
    st.rerun()  # the fragment's timer depends on playing: rebuild it


def step_explorer(store: Store, run: RunRecord) -> None:
    """Draw the explorer for `run`; the fragment ticks only while playing."""
    steps = store.steps(run.id)
    if not steps:
        st.info(f"Run {run.id} has no committed step yet; the first appears once the dense baseline is trained.")
        return
    last = steps[-1].step
    if st.session_state.get(STEP_KEY, last) > last or STEP_KEY not in st.session_state:
        st.session_state[STEP_KEY] = last
    playing = st.session_state.get(PLAYING_KEY, False)
    st.fragment(_view, run_every=PLAY_S if playing else None)(store, run, steps)


def _view(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    last = steps[-1].step
    if st.session_state.get(PLAYING_KEY) and time.time() - st.session_state.get(TICK_KEY, 0) >= 0.9 * PLAY_S:
        st.session_state[TICK_KEY] = time.time()
        if st.session_state[STEP_KEY] >= last:
            st.session_state[PLAYING_KEY] = False
            st.rerun()  # stop the timer
        st.session_state[STEP_KEY] += 1
    controls = st.columns([1, 1, 1, 3])
    controls[0].button("Previous", key="explorer_prev", on_click=_move, args=(-1, last),
                       icon=":material/skip_previous:", disabled=st.session_state[STEP_KEY] <= 0)
    playing = st.session_state.get(PLAYING_KEY, False)
    controls[1].button("Pause" if playing else "Play", key="explorer_play", on_click=_toggle_play, args=(last,),
                       icon=":material/pause:" if playing else ":material/play_arrow:")
    controls[2].button("Next", key="explorer_next", on_click=_move, args=(1, last),
                       icon=":material/skip_next:", disabled=st.session_state[STEP_KEY] >= last)
    controls[3].toggle("Show edges removed earlier", key=EARLIER_KEY, value=True)
    if last > 0:
        st.slider("Step", 0, last, key=STEP_KEY)
    _step(store, run, steps, st.session_state[STEP_KEY])


def _step(store: Store, run: RunRecord, steps: list[StepRecord], n: int) -> None:
    """One step: the DAG before its removal with its candidates, the table and the reason."""
    step = steps[n]
    parent = steps[n - 1].genotype if n > 0 else step.genotype
    cands = [c.to_dict() for c in store.candidates(run.id, n)]
    tried = [tuple(c["edge"]) for c in cands if c["edge"] is not None]
    what = "dense start (baseline)" if step.removed is None else f"removed {edge_str(step.removed)}"
    title = f"step {n}: {what}; {step.edges} edges left"
    dot = dag_graph(parent, candidates=tried, removed=step.removed, start=steps[0].genotype,
                    show_earlier=st.session_state.get(EARLIER_KEY, True), title=title)
    left, right = st.columns([3, 2])
    with left:
        dag_with_downloads(dot, step.genotype, f"run{run.id}-step{n}", "explorer")
    with right:
        st.markdown(f"**Step {n} candidates** ({len(cands)})")
        rows = candidate_rows(cands, step.removed, run.task, run.noise)
        st.dataframe(rows, hide_index=True, width="stretch")
        st.info(why_removed(step.removed, cands, run.task, steps[n - 1].edges if n > 0 else None,
                            run.noise),
                icon=":material/lightbulb:")
        table_button(rows, "Candidate table (CSV)", f"run{run.id}-step{n}-candidates", "explorer-cands")
        table_button(step_table(steps, run.task), "Step table (CSV)", f"run{run.id}-steps", "explorer-steps")
