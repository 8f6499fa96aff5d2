"""The random control in the app: the sentence at a step, the Trade-offs panel and its button.

Everything is read from the store (core.store.controls) and worded by core.insight.control;
training happens in the Runner's background thread (core.search.control), never here. The
panel follows a control while it trains (a fragment that reruns the page when a cell commits).
"""

from __future__ import annotations

import streamlit as st

from core.errors import UserError
from core.insight.control import (
    control_groups,
    control_points,
    control_sentence,
    group_at,
)
from core.insight.format import fmt_duration
from core.search.control import DEFAULT_SAMPLES, MAX_SAMPLES
from core.store.controls import ControlRecord, control_cells, get_control
from core.store.lifecycle import RunStatus
from core.store.runs import RunRecord, StepRecord, Store
from ui.errors import one_line
from ui.resources import get_runner, get_store
from ui.roles import can_change
from ui.selection import is_sample

REFRESH_S = 2.0
MESSAGE_KEY, SAMPLES_KEY = "control_message", "control_samples"
BUTTON = "Run a random control"


def control_live(store: Store, run: RunRecord | None) -> bool:
    control = get_control(store, run.id) if run is not None else None
    return control is not None and control.status in (RunStatus.RUNNING, RunStatus.QUEUED)


def step_control_sentence(store: Store, run: RunRecord, step: StepRecord) -> str | None:
    """The sentence for a step whose edge count the control drew at; None otherwise."""
    if step.step < 1:
        return None
    cells = [c for c in control_cells(store, run.id) if c.target == step.edges]
    if not cells:
        return None
    group = group_at(control_groups([step], cells, run.task, run.noise), step.edges)
    return control_sentence(group) if group else None


def trade_off_controls(store: Store, run: RunRecord) -> list[dict]:
    """The control's scored cells as Trade-offs points (grey crosses)."""
    return control_points(control_cells(store, run.id), run.task)


def _start(run_id: int) -> None:
    try:
        get_runner().start_control(get_store(), run_id, int(st.session_state.get(SAMPLES_KEY, DEFAULT_SAMPLES)))
        st.session_state[MESSAGE_KEY] = f"random control of run {run_id} started"
    except UserError as exc:
        st.session_state[MESSAGE_KEY] = one_line(exc)


def _stop(run_id: int) -> None:
    try:
        get_runner().stop(get_store(), run_id, kind="control")
        st.session_state[MESSAGE_KEY] = "stop requested: the control ends after the current batch"
    except UserError as exc:
        st.session_state[MESSAGE_KEY] = one_line(exc)


def control_panel(store: Store, run: RunRecord, steps: list[StepRecord], cells_shown: int) -> None:
    """Status, sentences per count, and (full mode) the button; live while the control trains."""
    st.subheader("Random control")
    st.caption(
        "Random cells cut from the same dense DAG to the same edge counts, trained and scored exactly "
        "as the candidates: is the search better than chance here?"
    )
    control = get_control(store, run.id)
    if control is not None and control.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        _follow(store, run, cells_shown)
    elif control is not None:
        _status_line(control, cells_shown)
    else:
        st.caption("No control for this run yet" + _who_can_run_one(run))
    cells = control_cells(store, run.id)
    for group in control_groups(steps, cells, run.task, run.noise):
        st.markdown(f"- {control_sentence(group)}")
    if can_change() and not is_sample(run) and not control_live(store, run):
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.number_input("Random cells per edge count", 1, MAX_SAMPLES, DEFAULT_SAMPLES, key=SAMPLES_KEY)
            st.button(
                BUTTON,
                key="control_start",
                on_click=_start,
                args=(run.id,),
                icon=":material/casino:",
                help="the best snapshot's, the final snapshot's and a halfway edge count; cells already "
                "trained are kept",
            )
    if st.session_state.get(MESSAGE_KEY):
        st.caption(st.session_state.pop(MESSAGE_KEY))


def _who_can_run_one(run: RunRecord) -> str:
    """A recorded sample is read-only (its control would retrain at the sample's full settings,
    minutes to hours, on data the laptop may not have), and a view-mode student changes nothing."""
    if is_sample(run):
        return f" (a recorded sample is read-only here; `python -m core control {run.id}` runs one from a terminal)."
    return "." if can_change() else " (the instructor can run one)."


def control_badge(store: Store, run: RunRecord) -> None:
    """For the Search page's live panel: the control's progress while it trains, else one line."""
    control = get_control(store, run.id)
    if control is None:
        return
    done = len(control_cells(store, run.id))
    if control.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        st.badge(
            f"live · random control: {done} of {control.planned} cells",
            color="red",
            icon=":material/radio_button_checked:",
        )
    else:
        st.caption(
            f"Random control {control.status}: {done} cells at {', '.join(map(str, control.targets))} "
            "edges; Trade-offs compares them with the chosen cells."
        )


def _status_line(control: ControlRecord, cells: int) -> None:
    st.caption(
        f"control {control.status}: {cells} random cells (r={control.samples} at "
        f"{', '.join(map(str, control.targets))} edges), {fmt_duration(control.wall_s)} of training"
        + (f"; error: {control.error}" if control.error else "")
    )


def _follow(store: Store, run: RunRecord, cells_shown: int) -> None:
    """While the control trains: a badge with its progress, Stop (full mode), and a rerun of the
    page when a cell commits or the control ends, so the figure gains its cross."""
    if can_change():
        st.button("Stop the control", key="control_stop", on_click=_stop, args=(run.id,), icon=":material/stop:")

    @st.fragment(run_every=REFRESH_S)
    def _poll() -> None:
        control = get_control(store, run.id)
        now = len(trade_off_controls(store, run))
        if control is None or control.status not in (RunStatus.RUNNING, RunStatus.QUEUED) or now != cells_shown:
            st.rerun(scope="app")
        p = control.progress
        st.badge(
            f"live · control: {len(control_cells(store, run.id))} of {control.planned} cells"
            + (f" · training {p.target}-edge cells" if p.target else ""),
            icon=":material/radio_button_checked:",
            color="red",
        )

    _poll()
