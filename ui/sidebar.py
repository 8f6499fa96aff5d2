"""The sidebar: which store, which run. Every page reads the chosen run from here.

The chosen run id is UI state (session_state) mirrored into the URL (?run=ID), so a
browser refresh or a shared link shows the same run; everything about the run itself is
read from the store on every render, which is what keeps tabs and the CLI in agreement.
"""
from __future__ import annotations

import time

import streamlit as st

from core.insight.format import fmt_duration
from core.store.runs import RunRecord, StoreError
from ui.bundles import bundle_sidebar, ensure_samples, is_sample
from ui.resources import get_store
from ui.roles import manage_runs, mode_line

RUN_KEY = "run_id"
# Material icons (markdown shortcodes): they render in every browser, unlike emoji fonts.
STATUS_ICON = {"running": ":material/sync:", "queued": ":material/schedule:", "finished": ":material/check_circle:",
               "stopped": ":material/pause_circle:", "failed": ":material/error:", "interrupted": ":material/warning:"}


def age(run: RunRecord) -> str:
    return f"{fmt_duration(time.time() - run.created_at)} ago"


def run_label(run: RunRecord) -> str:
    """A run's name in pickers: id, task, preset and data. Nothing that changes (status,
    age): Streamlit matches a selectbox value by its label, so a changing label would
    lose the user's choice on the next refresh."""
    cfg = run.config
    sample = "sample " if run.meta.get("sample") else ""
    return f"#{run.id} {sample}{run.task} {cfg.get('preset', '')} · {cfg.get('data', '')}"


def run_status(run: RunRecord) -> str:
    named = f"**{run.name}** · " if run.name else ""
    return f"{named}{STATUS_ICON.get(run.status, '')} {run.status} · started {age(run)}"


def select_run(run_id: int) -> None:
    """Make `run_id` the chosen run (for callbacks such as Start, before the picker renders)."""
    st.session_state[RUN_KEY] = run_id


def run_sidebar() -> None:
    """Store path, the run picker and the runs list. Call once per script run, before the page."""
    store = get_store()
    ensure_samples(store)  # the recorded sample runs, imported once
    runs = store.list_runs()
    ids = [r.id for r in runs]
    unknown = _apply_url_run(ids)
    with st.sidebar:
        mode_line()
        st.caption(f"Run store: `{store.path}`")
        if not runs:
            st.session_state.pop(RUN_KEY, None)
            st.info("No runs yet: start one on the Search page.")
            bundle_sidebar(store, None)
        else:
            if st.session_state.get(RUN_KEY) not in ids:
                st.session_state[RUN_KEY] = first_look(runs)
            by_id = {r.id: r for r in runs}
            st.selectbox("Run", ids, key=RUN_KEY, format_func=lambda i: run_label(by_id[i]))
            st.caption(run_status(by_id[st.session_state[RUN_KEY]]))
            st.query_params["run"] = str(st.session_state[RUN_KEY])
            bundle_sidebar(store, by_id[st.session_state[RUN_KEY]])
            with st.expander(f"All runs ({len(runs)})", expanded=False):
                st.dataframe([{"run": r.id, "name": r.name, "task": r.task, "preset": r.config.get("preset", ""),
                               "status": r.status, "started": age(r)}
                              for r in runs], hide_index=True, width="stretch")
        manage_runs(by_id.get(st.session_state.get(RUN_KEY)) if runs else None)
    if unknown:
        st.error(unknown, icon=":material/error:")


def first_look(runs: list[RunRecord]) -> int:
    """The run a fresh session opens on (runs newest first): the newest run the user made, else
    the recorded CNN sample, whose proxy accuracies are worth reading (the RNN sample's
    1-epoch perplexities of about 1,000 teach nothing at first sight), else the newest."""
    own = [r for r in runs if not is_sample(r)]
    cnn_samples = [r for r in runs if is_sample(r) and r.task == "cnn"]
    return (own or cnn_samples or runs)[0].id


def _apply_url_run(ids: list[int]) -> str:
    """Honour ?run=ID once per session; an id the store lacks is a message, not a crash."""
    if st.session_state.get("_url_run_applied"):
        return ""
    st.session_state["_url_run_applied"] = True
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


def current_run() -> RunRecord | None:
    """The chosen run, read fresh from the store (its status may have changed since)."""
    run_id = st.session_state.get(RUN_KEY)
    if run_id is None:
        return None
    try:
        return get_store().get_run(run_id)
    except StoreError:
        return None
