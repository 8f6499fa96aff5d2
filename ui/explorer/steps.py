"""The Explorer's step-through: slider, play/pause, previous/next (or the arrow keys); DAG,
table and reason.

The view is a fragment so that playing (advancing one step per PLAY_S), following a live
run (re-reading the store every REFRESH_S) and moving the slider redraw only the view, not
the whole app. Play/Pause change the fragment's timer, so their callbacks ask for a full rerun.
"""

from __future__ import annotations

import time

import streamlit as st

from core.insight.draw import dag_graph
from core.insight.explain import candidate_rows, why_removed
from core.insight.tradeoff import step_table
from core.store.runs import RunRecord, StepRecord, Store
from ui.control import step_control_sentence
from ui.dag_view import show_dag
from ui.downloads import dag_buttons, genotype_button, table_button
from ui.follow import followed_step, is_live, live_badge
from ui.step_page import shown_step, step_button, step_page, step_title
from ui.synced import synced
from ui.tables import candidates_table, score_caption
from ui.urlstate import write_step

PLAY_S = 1.5
STEP_KEY, PLAYING_KEY, TICK_KEY, EARLIER_KEY = "explorer_step", "explorer_playing", "explorer_tick", "explorer_earlier"
FOLLOW_KEY = "explorer_follow"
NO_RUN = "No run to explore yet: start one on the Search page."
NO_STEP = "Run {run} has no committed step yet; the first appears once the dense baseline is trained."


def _move(target: int, last: int) -> None:
    if target < st.session_state.get(STEP_KEY, last):
        _unfollow()
    st.session_state[STEP_KEY] = target


def _toggle_play(last: int) -> None:
    playing = not st.session_state.get(PLAYING_KEY, False)
    if playing and st.session_state.get(STEP_KEY, 0) >= last:
        st.session_state[STEP_KEY] = 0  # play from the start when already at the end
    st.session_state[PLAYING_KEY] = playing
    st.session_state[TICK_KEY] = time.time()
    st.rerun()  # the fragment's timer depends on playing: rebuild it


def step_explorer(store: Store, run: RunRecord) -> None:
    """Draw the explorer for `run`; the fragment ticks while playing and while the run is live
    (new steps appear and the slider grows; FOLLOW_KEY decides whether the view jumps to them)."""
    playing = st.session_state.get(PLAYING_KEY, False)
    step_page(store, run, "explorer", _view, NO_RUN, NO_STEP.format(run=run.id), every=PLAY_S if playing else None)


def _unfollow() -> None:
    """A student who moves by hand stops following the live run (they stepped back on purpose)."""
    st.session_state[FOLLOW_KEY] = False


def _view(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    last = steps[-1].step
    followed_step(run, last, STEP_KEY, FOLLOW_KEY, True, hold=bool(st.session_state.get(PLAYING_KEY)))
    _play_tick(last)
    if is_live(run):
        _live_bar(run, last)
    _controls(last)
    if last > 0:
        synced(st.slider, "Step", STEP_KEY, 0, last, on_change=_unfollow)
    write_step(st.session_state[STEP_KEY], following=is_live(run) and st.session_state[FOLLOW_KEY])
    _step(store, run, steps, st.session_state[STEP_KEY])


def _play_tick(last: int) -> None:
    """While playing, one step further each PLAY_S; at the last step, stop playing."""
    if st.session_state.get(PLAYING_KEY) and time.time() - st.session_state.get(TICK_KEY, 0) >= 0.9 * PLAY_S:
        st.session_state[TICK_KEY] = time.time()
        if st.session_state[STEP_KEY] >= last:
            st.session_state[PLAYING_KEY] = False
            st.rerun()  # stop the timer
        st.session_state[STEP_KEY] += 1


def _live_bar(run: RunRecord, last: int) -> None:
    """The live badge with how far behind the newest step the view is, and the Follow toggle."""
    behind = last - st.session_state[STEP_KEY]
    with st.container(horizontal=True, vertical_alignment="center"):
        live_badge(run, f"{last + 1} steps so far" + (f", {behind} newer than this one" if behind else ""))
        synced(
            st.toggle,
            "Follow the newest step",
            FOLLOW_KEY,
            help="on: the view jumps to each new step; off: stay where you are",
        )


def _controls(last: int) -> None:
    """Previous, Play/Pause and Next, the earlier-edges toggle and the way to Presenter mode."""
    controls = st.columns([1, 1, 1, 3])
    n = st.session_state[STEP_KEY]
    step_button(controls[0], "explorer", -1, _move, n, last, "skip_previous")
    playing = st.session_state.get(PLAYING_KEY, False)
    controls[1].button(
        "Pause" if playing else "Play",
        key="explorer_play",
        on_click=_toggle_play,
        args=(last,),
        icon=":material/pause:" if playing else ":material/play_arrow:",
    )
    step_button(controls[2], "explorer", 1, _move, n, last, "skip_next")
    with controls[3].container(horizontal=True):
        st.toggle("Show edges removed earlier", key=EARLIER_KEY, value=True)
        st.page_link("views/presenter.py", label="Presenter mode", icon=":material/slideshow:")


def _step(store: Store, run: RunRecord, steps: list[StepRecord], n: int) -> None:
    """One step: the DAG before its removal with its candidates (full width, on the run's
    fixed layout), then the table with the score first, and the reason."""
    shown = shown_step(store, run, steps, n)
    step, cands = shown.step, shown.cands
    marks = dict(
        candidates=shown.tried,
        removed=step.removed,
        start=shown.start,
        show_earlier=st.session_state.get(EARLIER_KEY, True),
        title=step_title(step),
    )
    show_dag(shown.parent, shown.layout, min_px=720, **marks)
    dot = dag_graph(shown.parent, **marks)
    with st.container(horizontal=True):
        genotype_button(step.genotype, f"run{run.id}-step{n}", "explorer")
        dag_buttons(dot, f"run{run.id}-step{n}", "explorer")
    st.info(why_removed(step.removed, cands, run.task, shown.edges_before, run.noise), icon=":material/lightbulb:")
    against_chance = step_control_sentence(store, run, step)
    if against_chance:
        st.info(against_chance, icon=":material/casino:")
    st.markdown(f"**Step {n} candidates** ({len(cands)})")
    rows = candidate_rows(cands, step.removed, run.task, run.noise)
    candidates_table(rows, run)
    score_caption(run.task)
    with st.container(horizontal=True):
        table_button(rows, "Candidate table (CSV)", f"run{run.id}-step{n}-candidates", "explorer-cands")
        table_button(step_table(steps, run.task), "Step table (CSV)", f"run{run.id}-steps", "explorer-steps")
