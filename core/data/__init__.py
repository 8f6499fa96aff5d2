"""Data the networks train on: the one dataset-spec parser (spec.py) and the start check
behind it (check.py), image datasets (digits, CIFAR-10 through a restricted
unpickler, image folders), text corpora (PTB, the embedded corpus), augmentation, and the
seeded batching both proxy search and final training use.

May import: core.errors, core.seeds.
"""
