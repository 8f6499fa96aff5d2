"""Compare: two to four genotypes (run steps, best snapshots, presets, uploads) side by side."""

import streamlit as st

from ui.compare.page import compare_page
from ui.resources import get_store
from ui.selection import current_run

st.title("Compare")
compare_page(get_store(), current_run())
