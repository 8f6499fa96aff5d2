"""The search: settings and presets (config), the shrink loop (loop), proxy tasks (tasks) and
their proxy training (proxy_cnn, proxy_rnn), and the evaluators that train a step's k
candidates (evaluators/: single, batched) behind one interface.

May import: core.cell, core.data, core.nets, core.store, and the base modules.
"""
