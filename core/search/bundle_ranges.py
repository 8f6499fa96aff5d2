"""The numbers a search can produce, for checking a run bundle's (core.search.bundle).

A bundle comes from outside, and a number that is the right type but no search could have
written (an accuracy of 1e308, -5 or NaN, a negative wall time, a 400-digit MAC count) would
be imported as if it were real and then shown on a class's projector, or crash the insert.
Each rule here is the range of the code that writes the number:

- accuracy is a fraction of a validation set: [0, 1];
- perplexity is exp(loss) with a finite loss under 700 (core.nets.bptt.perplexity): [1, e^700];
- a loss is a mean of float32 cross entropies: >= 0 and at most float32's largest; a diverged
  epoch's history row may hold NaN or inf for a loss or a perplexity (the search writes those);
- MACs, FLOPs and parameter counts are positive integers (exact in JSON: at most 2^53);
- a score is the paper's score of the candidate's own quality and cost (core.search.tasks);
- times are Unix timestamps up to the year 9999, durations >= 0 and no longer than that;
- epochs and history rows: at most the run's `epochs`; lr: (0, the run's lr].

Anything else numeric in a bundle (meta, unknown history keys) must at least be finite.
Every failure raises BundleError with one line.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Iterable

from core.errors import UserError
from core.search.config import SearchConfig

MAX_TIME = 253402300799.0  # 9999-12-31 23:59:59 UTC: the last time a datetime can show
MAX_COUNT = 2**53  # MACs, FLOPs, params: integers JSON carries exactly
MAX_LOSS = 3.4028234663852886e38  # float32's largest finite value
MAX_PERPLEXITY = math.exp(700)  # core.nets.bptt.perplexity: exp(loss) for a loss under 700, else inf
NON_FINITE_OK = ("loss", "ppl")  # history keys that may hold NaN/inf (a diverged epoch)
QUALITY = {"cnn": "accuracy", "rnn": "perplexity"}
COST = {"cnn": "macs", "rnn": "flops"}


class RangeError(UserError, ValueError):
    """A number outside what a search can produce; bundle.py words it as an inconsistent bundle."""


def need(ok: bool, message: str) -> None:
    if not ok:
        raise RangeError(message)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def in_range(v, low: float, high: float, what: str, optional: bool = True) -> None:
    """`v` is None (when optional) or a finite number in [low, high]."""
    if v is None and optional:
        return
    need(
        _is_number(v) and (isinstance(v, int) or math.isfinite(v)) and low <= v <= high,
        f"{what} is {_show(v)}, outside [{_show(low)}, {_show(high)}]",
    )


def count(v, what: str, optional: bool = True) -> None:
    """A MAC, FLOP or parameter count: a positive integer."""
    in_range(v, 1, MAX_COUNT, what, optional)


def _show(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**30:
        return f"an integer of {len(str(abs(v)))} digits"
    return f"{v:.6g}" if isinstance(v, float) else repr(v)[:40]


def all_finite(doc, what: str = "bundle") -> None:
    """No NaN or inf anywhere in `doc` (walked without recursion: nesting depth is the parser's)."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, float):
            need(math.isfinite(node), f"{what} holds a number that is not finite ({node})")
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def config_types(config: dict) -> None:
    """Each setting has its field's type (an int where an int belongs, text where text does), so
    validation compares numbers with numbers instead of failing with a TypeError."""
    for f in fields(SearchConfig):
        if f.name not in config:
            continue
        v, kind = config[f.name], type(f.default)
        ok = isinstance(v, str) if kind is str else _is_number(v) and (kind is float or isinstance(v, int))
        need(ok, f"setting {f.name} is {_show(v)}, not {'text' if kind is str else kind.__name__}")


def run_numbers(run: dict, cfg: SearchConfig, noise: dict) -> None:
    """The run row's numbers and its measured noise."""
    max_edges = cfg.nodes * (cfg.nodes - 1) // 2
    in_range(run["expected_steps"], 0, max_edges, "run expected_steps", optional=False)
    for key in ("created_at", "started_at", "finished_at"):
        in_range(run[key], 0, MAX_TIME, f"run {key}")
    if noise:
        metric = noise.get("metric")
        low, high = (0.0, 1.0) if metric == "accuracy" else (1.0, MAX_PERPLEXITY)
        in_range(noise.get("seeds"), 1, 10, "noise seeds", optional=False)
        in_range(noise.get("std"), 0.0, high - low, "noise std")
        in_range(noise.get("mean"), low, high, "noise mean")
        values = noise.get("values", [])
        need(isinstance(values, list) and len(values) <= 10, "noise values is not a short list")
        for v in values:
            in_range(v, low, high, "a noise value", optional=False)


def bundle_meta(meta: dict) -> None:
    """What the exporting side wrote about the bundle (shown with the run as its provenance)."""
    in_range(meta.get("exported_at"), 0, MAX_TIME, "meta exported_at")
    in_range(meta.get("wall_s"), 0, MAX_TIME, "meta wall_s")
    in_range(meta.get("steps"), 0, MAX_COUNT, "meta steps")
    in_range(meta.get("source_run_id"), 1, MAX_COUNT, "meta source_run_id")


def step_numbers(step, where: str) -> None:
    """A step's own numbers (its quality, cost and score are its chosen candidate's, checked there)."""
    in_range(step.wall_s, 0, MAX_TIME, f"{where}wall_s", optional=False)
    in_range(step.created_at, 0, MAX_TIME, f"{where}created_at", optional=False)


def candidate_numbers(c, cfg: SearchConfig, where: str) -> None:
    """One candidate's quality, cost, score, epochs, time and history against what its task writes."""
    from core.search.tasks import cnn_score, rnn_score

    task, other = cfg.task, "rnn" if cfg.task == "cnn" else "cnn"
    quality, cost = getattr(c, QUALITY[task]), getattr(c, COST[task])
    need(
        getattr(c, QUALITY[other]) is None and getattr(c, COST[other]) is None,
        f"{where}a {task} candidate has {QUALITY[other]} or {COST[other]}",
    )
    in_range(c.accuracy, 0.0, 1.0, f"{where}accuracy")
    in_range(c.perplexity, 1.0, MAX_PERPLEXITY, f"{where}perplexity")
    count(c.macs, f"{where}macs")
    count(c.flops, f"{where}flops")
    count(c.params, f"{where}params")
    in_range(c.idx, 0, max(cfg.k, cfg.noise_seeds) - 1, f"{where}idx", optional=False)
    in_range(c.epochs, 0, cfg.epochs, f"{where}epochs", optional=False)
    in_range(c.wall_s, 0, MAX_TIME, f"{where}wall_s", optional=False)
    if c.status != "ok":
        need(c.score is None, f"{where}a {c.status} candidate has a score")
    else:
        need(
            quality is not None and cost is not None and c.params is not None and c.epochs >= 1,
            f"{where}a trained candidate lacks its {QUALITY[task]}, {COST[task]}, params or epochs",
        )
        score = (cnn_score if task == "cnn" else rnn_score)(quality, cost)
        need(
            c.score is not None and math.isclose(c.score, score, rel_tol=1e-9, abs_tol=1e-9),
            f"{where}score {_show(c.score)} is not the score of its {QUALITY[task]} and {COST[task]} ({_show(score)})",
        )
    need(len(c.history) <= cfg.epochs, f"{where}history has more rows than the run's {cfg.epochs} epochs")
    for row in c.history:
        history_row(row, cfg, where)


def history_row(row: dict, cfg: SearchConfig, where: str) -> None:
    """One epoch's row: its epoch number, accuracies, losses, perplexities, lr and time."""
    in_range(row.get("epoch"), 1, cfg.epochs, f"{where}history epoch", optional=False)
    for key, v in row.items():
        if not _is_number(v) or key == "epoch":
            continue
        what = f"{where}history {key}"
        if isinstance(v, float) and not math.isfinite(v):
            need(any(part in key for part in NON_FINITE_OK), f"{what} is not finite")
        elif "acc" in key:
            in_range(v, 0.0, 1.0, what)
        elif key.endswith("ppl"):
            in_range(v, 1.0, MAX_PERPLEXITY, what)
        elif "loss" in key:
            in_range(v, 0.0, MAX_LOSS, what)
        elif key == "lr":
            in_range(v, 0.0, cfg.lr * (1 + 1e-9), what)
            need(v > 0, f"{what} is not positive")
        elif key == "seconds":
            in_range(v, 0.0, MAX_TIME, what)


def same_numbers(step, candidates: Iterable) -> bool:
    """A step's score, quality and cost are exactly those of one of `candidates` (its choice)."""
    keys = ("score", "accuracy", "perplexity", "macs", "flops", "params")
    return any(all(getattr(step, k) == getattr(c, k) for k in keys) for c in candidates)
