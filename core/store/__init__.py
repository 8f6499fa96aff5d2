"""The SQLite store: runs, steps and candidates of searches (runs.py), final-training
jobs and their epochs (jobs.py). Records are immutable once committed; the UI only reads.

May import: core.cell and the base modules.
"""
