"""Which run the user is looking at: the one piece of UI state every page reads.

The chosen run id lives in session_state (RUN_KEY) and is mirrored into the URL (?run=ID) by
the sidebar; the run itself is read from the store on every call. This module is apart from
the sidebar so that anything may select a run (Start, an imported bundle) without importing
the sidebar that draws the picker: that import ran in a circle (bundles <-> sidebar).
"""

from __future__ import annotations

import streamlit as st

from core.store.runs import RunRecord, StoreError
from ui.resources import get_store

RUN_KEY = "run_id"
URL_APPLIED_KEY = "_url_run_applied"


def is_sample(run: RunRecord) -> bool:
    """A recorded sample run (ui.bundles imports them): read-only, opened first on a fresh store."""
    return bool(run.meta.get("sample"))


def select_run(run_id: int) -> None:
    """Make `run_id` the chosen run (for callbacks such as Start, before the picker renders)."""
    st.session_state[RUN_KEY] = run_id


def current_run() -> RunRecord | None:
    """The chosen run, read fresh from the store (its status may have changed since)."""
    run_id = st.session_state.get(RUN_KEY)
    if run_id is None:
        return None
    try:
        return get_store().get_run(run_id)
    except StoreError:
        return None


def first_look(runs: list[RunRecord]) -> int:
    """The run a fresh session opens on (runs newest first): the newest run the user made, else
    the recorded CNN sample, whose proxy accuracies read at a glance (the RNN sample's proxy
    perplexities of about 480 need a reference to mean anything), else the newest."""
    own = [r for r in runs if not is_sample(r)]
    cnn_samples = [r for r in runs if is_sample(r) and r.task == "cnn"]
    return (own or cnn_samples or runs)[0].id


def apply_url_run(ids: list[int]) -> str:
    """Honour ?run=ID once per session; an id the store lacks is a message, not a crash."""
    if st.session_state.get(URL_APPLIED_KEY):
        return ""
    st.session_state[URL_APPLIED_KEY] = True
    raw = st.query_params.get("run")
    if raw is None:
        return ""
    try:
        run_id = int(raw)
    except ValueError:
        return f"the link names run {raw!r}, which is not a run number"
    if run_id not in ids:
        fallback = "showing the latest run instead" if ids else "the store has no runs yet"
        return f"unknown run {run_id} in {get_store().path}; {fallback}"
    select_run(run_id)
    return ""
