"""Search: start a shrink search from a preset, follow it live, stop or resume it."""
import streamlit as st

from ui.landing import landing
from ui.live import live_panel
from ui.search_form import search_form

st.title("Search")
landing()
form, live = st.columns([2, 3], gap="large")
with form:
    st.subheader("New search")
    search_form()
with live:
    live_panel()
