"""The Compare page's parts: page.py (slots, DAGs, costs, unique edges); the slots' sources
are shared with the Train page (ui.sources).

May import: core, and ui's shared helpers (ui.*); never another page's package, never views.
"""
