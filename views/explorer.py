"""Explorer: step through a run's shrink steps: the DAG, the candidates, why the edge went."""

import streamlit as st

from ui.explorer.page import explorer_page

st.title("Explorer")
explorer_page()
