"""The status line of a live search run or training job: state, Stop or Resume, and why it
ended badly. Searches and training jobs share one lifecycle, so they share this header, and
the one rule for a status that changed under a page: rerun."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.store.runs import RunStatus
from ui.roles import can_change
from ui.sidebar import STATUS_ICON

SEEN_KEY = "seen_status"


def rerun_on_change(where: str, status: object) -> None:
    """Remember `status` for `where` (a page and the run or job it shows); when it differs from
    the last look (a run ended, or was resumed), rerun the whole script so timers, buttons and
    the sidebar catch up. The first look only records."""
    seen = st.session_state.setdefault(SEEN_KEY, {})
    was, seen[where] = seen.get(where), status
    if was is not None and was != status:
        st.rerun()


def status_header(
    what: str,
    item_id: int,
    status: str,
    device: str,
    summary: str,
    error: str,
    on_stop: Callable[[int], None],
    on_resume: Callable[[int], None],
    message_key: str,
    resume_from: str,
    key: str,
) -> None:
    """`what` is "run" or "job"; `resume_from` says where Resume picks up (for the warning);
    `key` prefixes the buttons' widget keys ("live" -> live_stop, live_resume)."""
    cols = st.columns([3, 1])
    with cols[0]:
        st.markdown(
            f"**{STATUS_ICON.get(status, '')} {status}**" + (f" on {device}" if device else "") + f" · {summary}"
        )
    with cols[1]:
        if not can_change():
            pass  # view-only: watching, no Stop/Resume (the core would refuse them too)
        elif RunStatus(status).live:
            st.button("Stop", key=f"{key}_stop", on_click=on_stop, args=(item_id,), icon=":material/stop:")
        elif RunStatus(status).resumable:
            st.button(
                "Resume",
                key=f"{key}_resume",
                on_click=on_resume,
                args=(item_id,),
                type="primary",
                icon=":material/replay:",
            )
    message = st.session_state.pop(message_key, "")
    if message:
        st.toast(message)
    if status == RunStatus.FAILED:
        st.error(f"{what} {item_id} failed: {error or 'no reason recorded'}", icon=":material/error:")
    elif status == RunStatus.INTERRUPTED:
        st.warning(
            f"{what} {item_id} was interrupted (the process running it is gone); Resume continues from {resume_from}.",
            icon=":material/warning:",
        )
