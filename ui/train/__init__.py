"""The Train page's parts: the job form, the live job panel and its figures, where the
genotype to train comes from, and the job store handle.

May import: core, and ui's shared helpers (ui.*); never the other way round.
"""
