"""Explorer: step through a run's shrink steps: the DAG, the candidates, why the edge went."""
import streamlit as st

from ui.candidate_curves import candidate_curves
from ui.resources import get_store
from ui.sidebar import current_run
from ui.step_view import step_explorer

st.title("Explorer")
run = current_run()
if run is None:
    st.info("No run to explore yet: start one on the Search page.")
else:
    step_explorer(get_store(), run)
    candidate_curves(get_store(), run)
