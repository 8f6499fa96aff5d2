"""What the pages show, computed without Streamlit: DAG drawings, why an edge went, trade-off
points and fronts, genotype comparison, network summaries, number formats.

May import: core.cell, core.nets, core.store, core.search (settings), core.training (settings)
and the base modules. Never streamlit.
"""
