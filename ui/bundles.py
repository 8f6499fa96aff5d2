"""Run bundles in the app: the recorded sample runs, a download of the chosen run, an upload.

The samples shipped in assets/runs/ are imported into the store once per server process
(matched by content hash, so never twice) and marked as samples: finished runs that open in
Explorer, Trade-offs and Compare without any computation. AUTOSHRINK_SAMPLES=off turns that
off (the tests do), or names another folder.

In view-only mode (core.store.access) nothing here writes the store: no samples are imported
and no upload is offered (the core refuses an import there anyway).
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.errors import UserError
from core.insight.format import fmt_duration
from core.search.bundle import SAMPLE_DIR, bundle_bytes, import_bundle, import_samples
from core.store.access import view_only
from core.store.runs import RunRecord, Store
from ui.errors import one_line
from ui.resources import store_at
from ui.selection import is_sample, select_run

UPLOAD_KEY, MESSAGE_KEY = "bundle_upload", "bundle_message"


def sample_folder() -> Path | None:
    value = os.environ.get("AUTOSHRINK_SAMPLES", "")
    if value.lower() == "off":
        return None
    return Path(value) if value else SAMPLE_DIR


@st.cache_resource(show_spinner=False)
def _samples_in(store_path: str, folder: str) -> list[int]:
    """Once per server process and store: import the samples the store lacks."""
    return import_samples(store_at(store_path), Path(folder))


def ensure_samples(store: Store) -> None:
    """Import the samples once per server process; a view-only server writes nothing."""
    folder = sample_folder()
    if folder is not None and not view_only():
        try:
            _samples_in(str(store.path), str(folder))
        except UserError as exc:  # a damaged sample must not take the app down
            st.sidebar.warning(f"recorded samples not loaded: {one_line(exc)}", icon=":material/warning:")


def sample_header(run: RunRecord) -> None:
    """A sample's status line: recorded and read-only, so no Stop or Resume."""
    made = run.meta.get("bundle") or {}
    st.markdown(
        f"**:material/inventory_2: recorded sample, {run.status}** after {made.get('steps', '?')} steps "
        f"on {run.device or '?'} · read-only"
    )
    st.caption(provenance(run))


def provenance(run: RunRecord) -> str:
    """How an imported run was made: command, device, wall time (from its bundle)."""
    made = run.meta.get("bundle") or {}
    if not made:
        return ""
    wall = made.get("wall_s")
    return (
        f"Recorded with `{made.get('command') or '?'}` on {made.get('device') or '?'}, evaluator "
        f"{made.get('evaluator') or '?'}, wall time {fmt_duration(wall) if wall else '?'}"
        + (f". {made['made']}" if made.get("made") else "")
    )


def _import(store: Store) -> None:
    file = st.session_state.get(UPLOAD_KEY)
    if file is None:
        return
    try:
        run_id = import_bundle(store, file.getvalue(), file.name)
    except UserError as exc:
        st.session_state[MESSAGE_KEY] = ("error", one_line(exc))
        return
    select_run(run_id)
    st.session_state[MESSAGE_KEY] = ("ok", f"imported {file.name} as run {run_id}")


def bundle_sidebar(store: Store, run: RunRecord | None) -> None:
    """In the sidebar: the chosen run's provenance and bundle download, and (full mode only) the upload."""
    if run is not None:
        made = run.meta.get("bundle") or {}
        if made:
            wall = made.get("wall_s")
            st.caption(
                ("Recorded sample, read-only" if is_sample(run) else "Imported run")
                + f": {made.get('device') or '?'}, wall time {fmt_duration(wall) if wall else '?'} "
                "(the Search page shows how it was made)."
            )
        st.download_button(
            "Run bundle",
            lambda: bundle_bytes(store, run.id),
            file_name=f"run{run.id}.json.gz",
            mime="application/gzip",
            key="bundle-download",
            on_click="ignore",
            icon=":material/download:",
            help="the whole run (settings, steps, candidates, "
            "noise, timings) as one file; `python -m core import-run` or the upload below reads it",
        )
    if view_only():  # an import writes the shared store: the instructor's server does it
        return
    with st.expander("Import a run bundle", expanded=False):
        st.file_uploader("Run bundle (.json.gz or .json)", type=["gz", "json"], key=UPLOAD_KEY)
        st.button("Import", key="bundle-import", on_click=_import, args=(store,), icon=":material/upload:")
        kind, text = st.session_state.pop(MESSAGE_KEY, ("", ""))
        if kind == "error":
            st.error(text, icon=":material/error:")
        elif kind:
            st.success(text, icon=":material/check_circle:")
