"""Train: final training of a genotype (ShrinkCNN or ShrinkRNN), Start/Stop/Resume, live curves, exports."""

import streamlit as st

from ui.train.page import train_page

st.title("Train")
train_page()
