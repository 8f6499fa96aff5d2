"""The sidebar: which store, which run. Every page reads the chosen run from ui.selection.

The chosen run id is UI state (ui.selection.RUN_KEY) mirrored into the URL (?run=ID), so a
browser refresh or a shared link shows the same run; everything about the run itself is
read from the store on every render, which is what keeps tabs and the CLI in agreement.
"""

from __future__ import annotations

import time

import streamlit as st

from core.insight.format import fmt_duration
from core.store.runs import RunRecord
from ui.bundles import bundle_sidebar, ensure_samples
from ui.resources import get_store
from ui.roles import manage_runs, mode_line
from ui.selection import RUN_KEY, apply_url_run, first_look

# Material icons (markdown shortcodes): they render in every browser, unlike emoji fonts.
STATUS_ICON = {
    "running": ":material/sync:",
    "queued": ":material/schedule:",
    "finished": ":material/check_circle:",
    "stopped": ":material/pause_circle:",
    "failed": ":material/error:",
    "interrupted": ":material/warning:",
}


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


def run_sidebar() -> None:
    """Store path, the run picker and the runs list. Call once per script run, before the page."""
    store = get_store()
    ensure_samples(store)  # the recorded sample runs, imported once
    runs = store.list_runs()
    ids = [r.id for r in runs]
    unknown = apply_url_run(ids)
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
                st.dataframe(
                    [
                        {
                            "run": r.id,
                            "name": r.name,
                            "task": r.task,
                            "preset": r.config.get("preset", ""),
                            "status": r.status,
                            "started": age(r),
                        }
                        for r in runs
                    ],
                    hide_index=True,
                    width="stretch",
                )
        manage_runs(by_id.get(st.session_state.get(RUN_KEY)) if runs else None)
    if unknown:
        st.error(unknown, icon=":material/error:")
