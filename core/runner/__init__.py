"""Running searches and training jobs: background threads for the app (threads) and
Ctrl-C-aware foreground runs for the CLI (foreground).

May import: core.search, core.training, core.store and the layers below them.
"""
