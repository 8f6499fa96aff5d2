"""The Explorer page's parts: the step-through (steps.py) and one candidate's training curves
(curves.py); page.py puts them together.

May import: core, and ui's shared helpers (ui.*); never another page's package, never views.
"""
