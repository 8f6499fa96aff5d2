"""Shared test fixtures: a temporary run store. What tests import lives in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The app imports the recorded sample runs (assets/runs/) into its store; tests start from
# empty stores unless they ask for the samples.
os.environ["AUTOSHRINK_SAMPLES"] = "off"

# Two cores run the suite: one torch thread per test process keeps timings predictable.
torch.set_num_threads(1)
# ... and `--evaluator auto` trains in the test's own process: the suite already keeps every
# core busy, so worker pools would only oversubscribe them. tests/test_pool.py covers the pool.
os.environ["AUTOSHRINK_WORKERS"] = "1"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"
