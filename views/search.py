"""Search: start a shrink search from a preset, follow it live, stop or resume it."""

import streamlit as st

from ui.search.page import search_page

st.title("Search")
search_page()
