"""Compare: two to four genotypes (run steps, best snapshots, presets, uploads) side by side."""
import streamlit as st

from ui.compare_view import compare_view
from ui.resources import get_store
from ui.sidebar import current_run

st.title("Compare")
compare_view(get_store(), current_run())
