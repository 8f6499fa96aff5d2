"""The SQLite store: runs, steps and candidates of searches (runs.py), final-training
jobs and their epochs (jobs.py), random controls (controls.py). Records are immutable once
committed; the UI only reads.

Layers: schema.py (the tables and migrations) < connection.py (opening the file, a connection,
a transaction) < lifecycle.py (claim, heartbeat, stop, finish and liveness of a row, over any of
the three tables) < runs.py, jobs.py, controls.py < admin.py. A module uses only the public
names of the others.

May import: core.cell and the base modules.
"""
