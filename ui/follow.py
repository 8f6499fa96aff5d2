"""Following a running search on the read-only pages (Explorer, Trade-offs, Presenter, Predict).

A page that shows a live run wraps its body in a fragment that reruns every REFRESH_S and
re-reads the store, so new steps appear by themselves; when the run ends, the fragment
asks for one full rerun so its timer stops and the sidebar catches up.
"""

from __future__ import annotations

import streamlit as st

from core.store.controls import get_control
from core.store.runs import RunRecord, RunStatus, StoreError
from ui.resources import get_store
from ui.status import rerun_on_change
from ui.urlstate import url_step

REFRESH_S = 2.0


def is_live(run: RunRecord | None) -> bool:
    return run is not None and run.status.live


def refresh_every(run: RunRecord | None) -> float | None:
    """The fragment timer for `run`: REFRESH_S while it (or its random control) runs, none once
    it has ended."""
    return REFRESH_S if is_live(run) or _control_live(run) else None


def _control_live(run: RunRecord | None) -> bool:
    """Is the run's random control training (core.search.control)? Its cells add sentences."""
    if run is None:
        return False
    control = get_control(get_store(), run.id)
    return control is not None and RunStatus(control.status).live


def reread(run: RunRecord, page: str) -> RunRecord:
    """The run as the store has it now; a status change since the page's last look (the run
    ended, or was resumed) triggers a full rerun so the page's timer is rebuilt."""
    try:
        fresh = get_store().get_run(run.id)
    except StoreError:  # deleted meanwhile: the next full run shows the sidebar's choice
        st.rerun()
    # a control that starts or ends reruns too
    rerun_on_change(f"{page} run {run.id}", (fresh.status, _control_live(fresh)))
    return fresh


def live_badge(run: RunRecord, note: str = "") -> None:
    """A red "live" badge while the run is running, with what it is doing now."""
    if is_live(run):
        p = run.progress
        doing = f"step {p.step}: candidate {min(p.candidate + 1, p.k)} of {p.k}" if p.k else run.status
        st.badge(
            f"live · {doing}" + (f" · {note}" if note else ""), icon=":material/radio_button_checked:", color="red"
        )


def live_watch(run: RunRecord | None, steps_shown: int, page: str) -> None:
    """For a page drawn in one piece (Trade-offs): while `run` is live, show the badge and
    poll the store every REFRESH_S; when a step commits or the run ends, rerun the page so the
    new step is in every figure. Costs one small query per tick; nothing while the run is over."""
    if not is_live(run):
        return

    @st.fragment(run_every=REFRESH_S)
    def _poll() -> None:
        fresh = reread(run, page)
        now = len(get_store().steps(run.id))
        if now != steps_shown:
            st.rerun(scope="app")
        live_badge(fresh, f"{now} steps so far; figures update as steps commit")

    _poll()


def followed_step(
    run: RunRecord, last: int, step_key: str, follow_key: str, follow_default: bool, hold: bool = False
) -> int:
    """The step a page shows: the URL's step (which stops following), else the student's own, moved
    to the newest step while the run is live and they follow it (unless `hold`, e.g. playback)."""
    if url_step(step_key, last):
        st.session_state[follow_key] = False
    st.session_state.setdefault(follow_key, follow_default)
    # A run that ended between two refreshes was still followed a moment ago: its last step counts too.
    was_live, st.session_state[f"{follow_key}_live"] = st.session_state.get(f"{follow_key}_live"), is_live(run)
    following = (is_live(run) or was_live) and st.session_state[follow_key] and not hold
    if step_key not in st.session_state or st.session_state[step_key] > last or following:
        st.session_state[step_key] = last
    return st.session_state[step_key]
