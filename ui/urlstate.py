"""Links an instructor can paste: ?run=ID&page=NAME&step=N opens that run, page and step.

The sidebar applies ?run= (ui.selection.apply_url_run); this module applies ?page= (once per session, on
the app's first run) and ?step= (once per page), and writes the step back as the user
moves so the address bar is always a link to what is on screen.
"""

from __future__ import annotations

import streamlit as st

PAGE_PARAM, STEP_PARAM = "page", "step"


def apply_url_page(pages: dict[str, "st.navigation"]) -> None:
    """Switch to ?page=NAME (a page's url path, e.g. presenter) once per session."""
    if st.session_state.get("_url_page_applied"):
        return
    st.session_state["_url_page_applied"] = True
    name = (st.query_params.get(PAGE_PARAM) or "").strip().lower()
    if name in pages:  # switching drops the query, so hand the rest of the link to the page
        st.switch_page(
            pages[name], query_params={k: v for k, v in st.query_params.to_dict().items() if k != PAGE_PARAM}
        )


def url_step(key: str, last: int) -> bool:
    """Put ?step=N into session_state[key] once per page and session (clamped to 0..last);
    True when it did (the caller then stops following a live run: the link asked for a step)."""
    flag = f"_url_step_applied_{key}"
    if st.session_state.get(flag):
        return False
    st.session_state[flag] = True
    raw = st.query_params.get(STEP_PARAM)
    if raw is None:
        return False
    try:
        st.session_state[key] = min(max(int(raw), 0), last)
        return True
    except ValueError:
        st.toast(f"the link's step {raw!r} is not a step number; showing step {last}")
        return False


def write_step(step: int, following: bool = False) -> None:
    """The link to what is on screen; while following a live run there is no fixed step, so
    the link (and a browser reload) follows the newest one too."""
    if following:
        st.query_params.pop(STEP_PARAM, None)
    else:
        st.query_params[STEP_PARAM] = str(step)
