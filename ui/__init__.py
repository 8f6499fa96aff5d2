"""Shared Streamlit helpers for the app's pages: store and Runner access, the sidebar and run
selection, downloads, DAG display, charts, and the page bodies too big for a thin view.

Everything here renders and calls core; the search, training and costing live in core/.
A page with several parts has its sub-package (ui/search, ui/explorer, ui/compare, ui/train);
a one-module page is a module named for it (ui/presenter, ui/predict, ui/tradeoffs); the rest
is shared (ui/selection: the chosen run; ui/step_page: the step pages' skeleton; ui/charts:
figures). May import: core; views import ui, never the reverse; a page's sub-package never
imports another page's (tests/test_architecture.py checks this).
"""
