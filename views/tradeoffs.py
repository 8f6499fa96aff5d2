"""Trade-offs: every candidate's quality against cost, the Pareto front, the per-step series."""

import streamlit as st

from ui.tradeoffs import tradeoffs_page

st.title("Trade-offs")
tradeoffs_page()
