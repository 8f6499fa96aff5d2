"""Instructor (full) and student (view-only) mode in the app, and the instructor's run
housekeeping: rename, delete (confirmed; never a live run) and reset the store.

The mode comes from core.store.access (AUTOSHRINK_MODE=view, or `streamlit run app.py --
--view`). Pages ask `can_change()` before drawing a control that changes anything; the
core refuses such calls anyway, so a hidden button is not the only lock.
"""

from __future__ import annotations

import streamlit as st

from core.errors import UserError
from core.store.access import view_only
from core.store.admin import delete_run, rename_run, reset_store
from core.store.runs import RunRecord
from ui.errors import one_line
from ui.resources import get_store

MESSAGE_KEY = "manage_message"
RESET_WORD = "reset"


def can_change() -> bool:
    return not view_only()


def mode_line() -> None:
    """Which mode this server is in, at the top of the sidebar."""
    if view_only():
        st.caption(":material/visibility: **View-only** (student) mode")
    else:
        st.caption(":material/school: Instructor mode: full control")


def view_note() -> None:
    """The one line a student sees where an instructor has controls."""
    st.caption(
        ":material/visibility: View-only mode: runs can be watched and explored here; starting, "
        "stopping and training are for the instructor's server."
    )


def _act(fn, *args, done: str) -> None:
    try:
        fn(get_store(), *args)
        st.session_state[MESSAGE_KEY] = done
    except UserError as exc:
        st.session_state[MESSAGE_KEY] = one_line(exc)


def _rename(run_id: int) -> None:
    _act(rename_run, run_id, st.session_state.get(f"manage_name_{run_id}", ""), done=f"run {run_id} renamed")


def _delete(run_id: int) -> None:
    _act(delete_run, run_id, done=f"run {run_id} deleted")
    st.session_state["manage_confirm_delete"] = False


def _reset() -> None:
    if st.session_state.get("manage_reset_word", "").strip().lower() != RESET_WORD:
        st.session_state[MESSAGE_KEY] = f"type {RESET_WORD!r} to confirm the reset"
        return
    _act(reset_store, done="store reset: every run and training job removed")
    st.session_state["manage_reset_word"] = ""


def manage_runs(run: RunRecord | None) -> None:
    """The sidebar's "Manage runs" expander (full mode only)."""
    if not can_change():
        return
    message = st.session_state.pop(MESSAGE_KEY, "")
    with st.expander("Manage runs", expanded=bool(message), icon=":material/edit:"):
        if message:
            st.caption(message)
        if run is not None:
            st.text_input("Name of run #%d" % run.id, value=run.name, key=f"manage_name_{run.id}", max_chars=80)
            st.button("Rename", key="manage_rename", on_click=_rename, args=(run.id,))
            live = run.status.live
            confirm = st.checkbox(
                f"Yes, delete run #{run.id} and its steps", key="manage_confirm_delete", disabled=live
            )
            st.button(
                "Delete run",
                key="manage_delete",
                on_click=_delete,
                args=(run.id,),
                type="secondary",
                disabled=live or not confirm,
                icon=":material/delete:",
                help="stop it first" if live else "removes the run, its steps and candidates",
            )
        st.text_input(f"Type {RESET_WORD!r} to empty the whole store", key="manage_reset_word")
        st.button("Reset store", key="manage_reset", on_click=_reset, icon=":material/restart_alt:")
