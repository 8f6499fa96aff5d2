"""AutoShrink Studio: `streamlit run app.py` (instructor) or `streamlit run app.py -- --view`
(students: view-only; AUTOSHRINK_MODE=view does the same).

The entry point only sets up navigation and the sidebar (store and run picker); each page
is a thin file under views/ that renders with helpers from ui/ and calls core/.

Why views/ and not pages/: a folder named pages/ next to app.py switches Streamlit into its
legacy multipage mode for a server's first script run (a fresh server opened at /explorer
shows the bare page with no sidebar) and makes AppTest.switch_page skip this file.
The favicon is a local file: an icon shortcode would be fetched from a font host, and the
app must work offline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from core.store.access import MODE_ENV, VIEW
from core.store.runs import default_store_path
from ui.errors import user_errors
from ui.resources import warm_up
from ui.sidebar import run_sidebar
from ui.urlstate import apply_url_page

if "--view" in sys.argv[1:]:  # `streamlit run app.py -- --view`: this server is view-only
    os.environ[MODE_ENV] = VIEW

st.set_page_config(
    page_title="AutoShrink Studio", page_icon=str(Path(__file__).parent / "assets" / "favicon.png"), layout="wide"
)

PAGES = [
    st.Page("views/search.py", title="Search", icon=":material/play_circle:", default=True),
    st.Page("views/explorer.py", title="Explorer", icon=":material/account_tree:"),
    st.Page("views/presenter.py", title="Presenter", icon=":material/slideshow:"),
    st.Page("views/predict.py", title="Predict the edge", icon=":material/psychology:"),
    st.Page("views/tradeoffs.py", title="Trade-offs", icon=":material/scatter_plot:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
]

page = st.navigation(PAGES)
apply_url_page({p.url_path or "search": p for p in PAGES})
with user_errors():  # an unreadable store stops here with one message, before any page reads it
    run_sidebar()
    warm_up(str(default_store_path().resolve()))
    page.run()
