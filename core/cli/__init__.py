"""`python -m core`: search, resume, runs, show, export, summary (main) and train (train);
the progress bar they draw (progress).

May import: any core package. Nothing imports it but core/__main__.py.
"""
