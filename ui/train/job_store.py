"""The training-job view of the run store, one per store path per server process.

JobStore creates its tables on construction; caching it keeps the Train page's 2-second
refresh and Compare's picker from re-running that schema script on every render.
"""
from __future__ import annotations

import streamlit as st

from core.store.jobs import JobStore
from ui.resources import get_store


@st.cache_resource(show_spinner=False)
def job_store_at(path: str) -> JobStore:
    """The JobStore on `path` (Compare pickers are handed a Store; this is its jobs view)."""
    return JobStore(path)


def get_job_store() -> JobStore:
    """The JobStore on the store the sidebar shows (AUTOSHRINK_STORE or the default)."""
    return job_store_at(str(get_store().path.resolve()))
