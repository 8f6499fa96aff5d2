"""The Explorer page: step through a run's shrink steps, then one candidate's training curves."""

from __future__ import annotations

import streamlit as st

from ui.explorer.curves import candidate_curves
from ui.explorer.steps import NO_RUN, step_explorer
from ui.resources import get_store
from ui.selection import current_run


def explorer_page() -> None:
    run = current_run()
    if run is None:
        st.info(NO_RUN)
        return
    step_explorer(get_store(), run)
    candidate_curves(get_store(), run)
