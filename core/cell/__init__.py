"""The cell: the genotype value (a DAG of nodes with ops, pruning, leaves, validation, JSON,
hash) and the published genotypes shipped as presets (ShrinkCNN-A/B, ShrinkRNN).

May import: core.errors only. Everything else builds on it.
"""
