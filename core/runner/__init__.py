"""Running searches and training jobs: background threads for the app (threads; stopped and
marked `stopped` when the server gets SIGTERM or exits) and Ctrl-C- and SIGTERM-aware
foreground runs for the CLI (foreground).

May import: core.search, core.training, core.store and the layers below them.
"""
