"""The Search page: the opening words, then the new-search form beside the chosen run's live panel."""

from __future__ import annotations

import streamlit as st

from ui.search.landing import landing
from ui.search.live import live_panel
from ui.search_form import search_form


def search_page() -> None:
    landing()
    form, live = st.columns([2, 3], gap="large")
    with form:
        st.subheader("New search")
        search_form()
    with live:
        live_panel()
