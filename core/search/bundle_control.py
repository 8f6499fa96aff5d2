"""A run bundle's random control (format version 2): written from the store, checked on import.

The control's cells are reproducible from the run's seed, so an imported control is checked
by redrawing: every cell must be exactly the random cell its (count, sample) seed draws from the
run's dense DAG, and its score must be the score formula of its own quality and cost. A tampered
cell, count or score is refused with one line (core.search.bundle reports it as an inconsistent
bundle) and nothing is imported.
"""

from __future__ import annotations

import math

from core.cell.genotype import Genotype
from core.errors import UserError
from core.result import CandidateStatus
from core.search.config import SearchConfig
from core.search.control import MAX_SAMPLES, cell_seed, random_cell
from core.search.tasks import cnn_score, rnn_score
from core.store.controls import ControlCell, control_cells, get_control
from core.store.lifecycle import RunStatus
from core.store.runs import Store

MAX_CELLS = 2000


class ControlBundleError(UserError, ValueError):
    """A control in a bundle that does not check out; one line."""


def control_fields(store: Store, run_id: int) -> dict | None:
    """The control of `run_id` as a bundle's `control` object (None without one)."""
    control = get_control(store, run_id)
    if control is None:
        return None
    status = RunStatus.STOPPED if control.status in (RunStatus.RUNNING, RunStatus.QUEUED) else control.status
    d = control.to_dict()
    return {
        **{
            k: d[k]
            for k in (
                "samples",
                "targets",
                "device",
                "evaluator",
                "created_at",
                "started_at",
                "finished_at",
                "error",
                "wall_s",
            )
        },
        "status": status,
        "cells": [
            {**c.to_dict(), "genotype": c.genotype.to_dict(), "history": list(c.history)}
            for c in control_cells(store, run_id)
        ],
    }


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ControlBundleError(f"control: {message}")


def _num(d: dict, key: str, kind=float, optional: bool = True):
    v = d.get(key)
    if v is None:
        _need(optional, f"{key} is missing")
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    _need(ok and (kind is float or float(v).is_integer()), f"{key} is not a number")
    return kind(v)


def check_control(c: dict, cfg: SearchConfig, dense: Genotype) -> tuple[dict, list[ControlCell]]:
    """The control's row fields and its cells, every cell redrawn and rescored; raises one line."""
    samples = _num(c, "samples", int, False)
    targets = c.get("targets")
    _need(samples is not None and 1 <= samples <= MAX_SAMPLES, "samples out of range")
    _need(
        isinstance(targets, list)
        and targets
        and all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t < dense.num_edges for t in targets),
        "edge counts are not counts of this run's DAG",
    )
    _need(c.get("status") in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED), f"status {c.get('status')!r}")
    raw = c.get("cells")
    _need(isinstance(raw, list) and len(raw) <= MAX_CELLS, "cells is not a list")
    row = {
        "samples": samples,
        "targets": sorted(set(targets), reverse=True),
        "status": c["status"],
        "device": str(c.get("device", "")),
        "evaluator": str(c.get("evaluator", "")),
        "created_at": _num(c, "created_at", float, False),
        "started_at": _num(c, "started_at"),
        "finished_at": _num(c, "finished_at"),
        "error": str(c.get("error", "")),
        "wall_s": _num(c, "wall_s") or 0.0,
    }
    cells = [_cell(x, cfg, dense, row) for x in raw]
    _need(len({(x.target, x.sample) for x in cells}) == len(cells), "a cell is repeated")
    return row, cells


def _cell(x, cfg: SearchConfig, dense: Genotype, row: dict) -> ControlCell:
    _need(isinstance(x, dict), "a cell is not an object")
    target, sample = _num(x, "target", int, False), _num(x, "sample", int, False)
    where = f"cell {target}/{sample}"
    _need(target in row["targets"] and 0 <= sample < row["samples"], f"{where} is outside the control's plan")
    _need(isinstance(x.get("genotype"), dict), f"{where} has no genotype")
    genotype = Genotype.from_dict(x["genotype"])
    _need(
        genotype == random_cell(dense, target, cell_seed(cfg.seed, target, sample)),
        f"{where} is not the random cell its seed draws from the run's dense DAG",
    )
    history = x.get("history", [])
    _need(isinstance(history, list) and all(isinstance(h, dict) for h in history), f"{where} history")
    _need(x.get("status") in (CandidateStatus.OK, CandidateStatus.FAILED), f"{where} status")
    cell = ControlCell(
        target=target,
        sample=sample,
        genotype=genotype,
        status=x["status"],
        accuracy=_num(x, "accuracy"),
        perplexity=_num(x, "perplexity"),
        macs=_num(x, "macs", int),
        flops=_num(x, "flops", int),
        params=_num(x, "params", int),
        score=_num(x, "score"),
        epochs=_num(x, "epochs", int) or 0,
        stop_reason=str(x.get("stop_reason", "")),
        wall_s=_num(x, "wall_s") or 0.0,
        error=str(x.get("error", "")),
        history=tuple(history),
        worker=str(x.get("worker", "")),
    )
    if cell.score is not None:
        _need(
            _rescored(cell, cfg.task) is not None and abs(_rescored(cell, cfg.task) - cell.score) < 1e-9,
            f"{where}'s score is not the score formula of its quality and cost",
        )
    return cell


def _rescored(cell: ControlCell, task: str) -> float | None:
    if task == "cnn":
        ok = cell.accuracy is not None and cell.macs
        return cnn_score(cell.accuracy, cell.macs) if ok else None
    ok = cell.perplexity is not None and cell.flops
    return rnn_score(cell.perplexity, cell.flops) if ok else None
