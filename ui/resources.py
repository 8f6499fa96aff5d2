"""Long-lived objects of the server process, shared by every session and tab.

The Runner must be one per process so a search started from one tab keeps running when
that tab closes and shows in every other tab; st.cache_resource gives exactly that.
"""
from __future__ import annotations

import streamlit as st

from core.runner.threads import Runner
from core.store.runs import Store, default_store_path


@st.cache_resource(show_spinner=False)
def get_runner() -> Runner:
    """The process's one Runner (background search threads)."""
    return Runner()


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The run store named by AUTOSHRINK_STORE (read on every call, so tests can point the
    app at a temporary store) or runs/autoshrink.db."""
    return _store_at(str(default_store_path().resolve()))
