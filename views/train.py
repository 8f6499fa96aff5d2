"""Train: final training of a genotype (ShrinkCNN or ShrinkRNN), Start/Stop/Resume, live curves, exports."""
import streamlit as st

from ui.sidebar import current_run
from ui.train.form import train_form
from ui.train.live import job_panel

st.title("Train")
form, live = st.columns([2, 3], gap="large")
with form:
    st.subheader("New training")
    train_form(current_run())
with live:
    job_panel()
