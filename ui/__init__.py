"""Shared Streamlit helpers for the app's pages: store and Runner access, the sidebar run
picker, downloads, DAG display, figures and the page sections too big for a thin page.

Everything here renders and calls core; the search, training and costing live in core/.
Sub-packages: ui/train (the Train page's parts). May import: core; views import ui, never
the reverse.
"""
