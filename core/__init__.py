"""AutoShrink Studio core: topology-aware NAS by edge shrinking, with no UI dependency.

Packages, each allowed to import only those listed before it (and the base modules):
  errors, seeds, result, device   tiny shared base: user errors, seed derivation, result types
  cell       the genotype value (DAG, ops, pruning, JSON) and the published presets
  data       image datasets, corpora, image folders, augmentation, batching
  nets       CNN and RNN networks, their cost, evaluation passes          (cell, data)
  store      the SQLite run and job store                                  (cell)
  search     settings, the shrink loop, proxy tasks, the evaluators        (cell, data, nets, store)
  training   final training: settings, job engine, trainers, export        (cell, data, nets, store)
  insight    what the pages show, computed without Streamlit               (cell, nets, store, search, training)
  runner     background threads for the app, Ctrl-C-aware foreground runs  (search, training, store)
  cli        `python -m core`                                              (everything above)

Nothing under core/ imports streamlit: the search runs headless (CLI, GPU machines) and
the app only reads the run store and calls in here. tests/test_architecture.py holds
these rules.
"""

__version__ = "0.1.0"
