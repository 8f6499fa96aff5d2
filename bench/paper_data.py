"""Which data a benchmark trains on: the paper's proxy data when a copy is here, else the
bundled stand-in (digits for CNN, the embedded corpus for RNN), so every benchmark runs anywhere.

The copies looked for: ../shared/data (the developers' machines), shared/data (carried into the
tree, e.g. to a GPU box) and data/ (a git-ignored copy).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = (ROOT.parent / "shared" / "data", ROOT / "shared" / "data", ROOT / "data")
# task -> (folder under a data place, a file that must be in it, spec prefix, stand-in spec)
PAPER = {
    "cnn": ("cifar10/cifar-10-batches-py", "data_batch_1", "cifar10", "digits"),
    "rnn": ("ptb-proxy", "train.txt", "ptb-proxy", "embedded"),
}


def paper_data(task: str) -> str:
    """The data spec of the paper's proxy data for `task` when a copy is here, else the stand-in."""
    folder, marker, prefix, stand_in = PAPER[task]
    for place in PLACES:
        if (place / folder / marker).exists():
            return f"{prefix}:{place / folder}"
    return stand_in
