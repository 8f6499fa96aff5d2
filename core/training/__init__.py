"""Final training of a found cell: settings (config), the job engine (engine) and the context
trainers see (context), the CNN and RNN trainers (cnn, rnn), checkpoints and export.

May import: core.cell, core.data, core.nets, core.store, and the base modules. Proxy training
(what the search does to a candidate) lives in core.search, not here.
"""
