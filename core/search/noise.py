"""The noise of a search, measured by the search itself.

At step 0 the dense DAG is trained `noise_seeds` times, each with its own initial weights
(the candidates of a step differ the same way). The spread of those quality figures is the
noise: a gap between two candidates smaller than it says nothing about the two cells.
"""

from __future__ import annotations

import math
from statistics import fmean, stdev
from typing import Sequence

from core.store.runs import CandidateRecord

METRIC = {"cnn": "accuracy", "rnn": "perplexity"}


def measure_noise(task: str, baseline: Sequence[CandidateRecord]) -> dict:
    """{"metric", "std", "seeds", "mean", "values"} from the step-0 records; std is None
    with fewer than two trained seeds (noise not measured)."""
    metric = METRIC[task]
    values = [getattr(r, metric) for r in baseline if r.status == "ok"]
    values = [v for v in values if v is not None and math.isfinite(v)]
    std = stdev(values) if len(values) >= 2 else None
    return {
        "metric": metric,
        "std": std,
        "seeds": len(baseline),
        "mean": fmean(values) if values else None,
        "values": values,
    }


def noise_std(noise: dict | None) -> float | None:
    """The measured standard deviation, or None when the run did not measure it."""
    std = (noise or {}).get("std")
    return float(std) if std is not None and math.isfinite(std) else None
