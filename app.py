"""AutoShrink Studio: `streamlit run app.py`.

The entry point only sets up navigation and the sidebar (store and run picker); each page
is a thin file under views/ that renders with helpers from ui/ and calls core/.

Why views/ and not pages/: a folder named pages/ next to app.py switches Streamlit into its
legacy multipage mode for a server's first script run (a fresh server opened at /explorer
shows the bare page with no sidebar) and makes AppTest.switch_page skip this file.
"""
from __future__ import annotations

import streamlit as st

from ui.errors import user_errors
from ui.sidebar import run_sidebar

st.set_page_config(page_title="AutoShrink Studio", page_icon=":material/content_cut:", layout="wide")

PAGES = [
    st.Page("views/search.py", title="Search", icon=":material/play_circle:", default=True),
    st.Page("views/explorer.py", title="Explorer", icon=":material/account_tree:"),
    st.Page("views/tradeoffs.py", title="Trade-offs", icon=":material/scatter_plot:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
with user_errors():  # an unreadable store stops here with one message, before any page reads it
    run_sidebar()
    page.run()
