"""Which function trains a step for each evaluator name, and which evaluator a worker runs.

Its own module so that the evaluators themselves (pool, ray) can use it without importing the
package that dispatches to them. The modules are imported by name only when their evaluator runs,
so ray and the stacked network load only for the searches that use them.
"""

from __future__ import annotations

import importlib
from typing import Callable

from core.store.runs import CandidateRecord

# An evaluator's name -> (its module, its step function).
EVALUATORS: dict[str, tuple[str, str]] = {
    "single": ("core.search.evaluators.single", "evaluate_single"),
    "batched": ("core.search.evaluators.batched", "evaluate_batched"),
    "pool": ("core.search.evaluators.pool", "evaluate_pool"),
    "ray": ("core.search.evaluators.ray_eval", "evaluate_ray"),
}


def evaluator_fn(name: str) -> Callable[..., list[CandidateRecord]]:
    """The step function of the evaluator `name` (a key of EVALUATORS)."""
    module, fn = EVALUATORS[name]
    return getattr(importlib.import_module(module), fn)


def worker_evaluator(task_kind: str, batched_fits: bool = True) -> str:
    """What trains candidates inside one worker (a pool process, a Ray task): batched for a CNN
    when it fits (pool: always; ray: on a GPU or more than one candidate per task), else single."""
    return "batched" if task_kind == "cnn" and batched_fits else "single"
