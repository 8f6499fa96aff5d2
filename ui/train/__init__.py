"""The Train page's parts: the job form, the live job panel and its figures, where the
genotype to train comes from, and the job store handle; page.py lays them out.

May import: core, and ui's shared helpers (ui.*); never another page's package, never views.
"""
