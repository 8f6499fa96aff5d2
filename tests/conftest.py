"""Shared test fixtures: a temporary run store and the location of the real shared data."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CIFAR_DIR = SHARED_DATA / "cifar10" / "cifar-10-batches-py"
PTB_DIR = SHARED_DATA / "ptb-proxy"

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


def needs(path: Path, what: str):
    """Skip a real-data test with a stated reason when ../shared is absent."""
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path} (../shared/data is absent)")
