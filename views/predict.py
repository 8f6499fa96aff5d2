"""Predict the edge: pick the edge you think AutoShrink removes, then see how you scored."""

import streamlit as st

from ui.predict import predict_page
from ui.resources import get_store
from ui.selection import current_run

st.title("Predict the edge")
predict_page(get_store(), current_run())
