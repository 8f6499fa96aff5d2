"""Shared test fixtures: a temporary run store. What tests import lives in tests/helpers.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Compile each source file once per suite run, not once per process: the suite starts some fifty
# Python processes (xdist workers, CLI runs, app servers, Ray and pool workers), and where the
# environment sets PYTHONDONTWRITEBYTECODE each of them compiled core/, ui/ and the test modules
# again. The caches are git-ignored (__pycache__/).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

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


# The files that take longest, longest first. `--dist loadfile` hands files to the two workers in
# collection order (pytest_configure turns off xdist's reordering by test count, which put these
# few-test files last, so one worker ran on alone for half a minute); starting the long ones first
# lets the short ones fill the gaps. A file missing here only runs later, never not at all.
LONGEST_FIRST = (
    "test_search.py",
    "test_journeys_cli.py",
    "test_browser.py",
    "test_gpu_paths.py",
    "test_ray.py",
    "test_batched.py",
    "test_real_data.py",
    "test_faults_sigterm.py",
    "test_control.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist is loaded
        config.option.loadscopereorder = False
