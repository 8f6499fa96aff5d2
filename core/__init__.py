"""AutoShrink Studio core: topology-aware NAS by edge shrinking, with no UI dependency.

Nothing under core/ imports streamlit: the search runs headless (CLI, GPU machines) and
the app only reads the run store and calls in here.
"""
__version__ = "0.1.0"
