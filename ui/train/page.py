"""The Train page: the job form beside the live panel of the chosen job."""

from __future__ import annotations

import streamlit as st

from ui.selection import current_run
from ui.train.form import train_form
from ui.train.live import job_panel


def train_page() -> None:
    form, live = st.columns([2, 3], gap="large")
    with form:
        st.subheader("New training")
        train_form(current_run())
    with live:
        job_panel()
