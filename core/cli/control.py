"""`python -m core control RUN`: train a run's random-removal control, with a progress bar.

    python -m core control 3                      # 5 random cells at the default counts
    python -m core control 3 --samples 10 --edges 12,8 --json

Run again after a stop or a kill, it trains only the cells that are missing (same plan unless
flags change it). Ctrl-C stops it after the current batch (exit 130), as with `search`.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.progress import ProgressBar
from core.errors import UserError
from core.insight.control import control_groups, control_sentence
from core.insight.format import fmt_duration
from core.runner.foreground import run_interruptibly
from core.search.control import DEFAULT_SAMPLES, ControlObserver, run_control
from core.store.controls import control_cells, get_control
from core.store.lifecycle import RunStatus
from core.store.runs import Store


class ControlProgress(ControlObserver):
    """A bar over the control's cells (committed of planned); log lines above it."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def on_log(self, run_id, message):
        if not self.quiet:
            (self.bar.message if self.bar else lambda m: print(m, file=sys.stderr))(message)

    def on_start(self, run_id, done, total):
        self.bar = ProgressBar(total)
        self.bar.update(done, f"control: {done}/{total} cells", force=True)

    def on_cell(self, run_id, cell, done, total):
        if self.bar:
            self.bar.update(done, f"control: {done}/{total} cells ({cell.target} edges)", force=done == total)

    def on_end(self, run_id, status, error):
        if self.bar:
            self.bar.close()


def control_summary(store: Store, run_id: int) -> dict | None:
    """The control of a run as `show --json` and `control --json` print it; None without one."""
    control = get_control(store, run_id)
    if control is None:
        return None
    run, cells = store.get_run(run_id), control_cells(store, run_id)
    return {
        **control.to_dict(),
        "cells": [{**c.to_dict(), "genotype": c.genotype.to_dict(), "history": list(c.history)} for c in cells],
        "summary": control_groups(store.steps(run_id), cells, run.task, run.noise),
    }


def print_summary(store: Store, run_id: int) -> None:
    """One sentence per count, for the terminal."""
    control = get_control(store, run_id)
    if control is None:
        return
    run = store.get_run(run_id)
    print(
        f"control of run {run_id}: {control.status}, {len(control_cells(store, run_id))} random cells "
        f"(r={control.samples} at {', '.join(map(str, control.targets))} edges), "
        f"{fmt_duration(control.wall_s)} of training"
    )
    for group in control_groups(store.steps(run_id), control_cells(store, run_id), run.task, run.noise):
        print(f"  {control_sentence(group)}")
    if control.status not in ("finished", "running", "queued"):
        print(f"  the control is {control.status}: `python -m core control {run_id}` trains its missing cells")


def _edges(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--edges takes edge counts separated by commas (e.g. 12,8), not {text!r}") from None


def cmd_control(args: argparse.Namespace) -> int:
    store = Store(args.store)
    store.get_run(args.run_id)  # an unknown run says so
    before = get_control(store, args.run_id)
    samples = args.samples if args.samples is not None else (before.samples if before else DEFAULT_SAMPLES)
    edges = _edges(args.edges) or (list(before.targets) if before and args.samples is None else None)
    obs = ControlProgress(args.json)
    outcome = run_interruptibly(
        lambda stop: run_control(store, args.run_id, samples, edges, obs, stop),
        lambda m: print(m, file=sys.stderr),
        f"; run `control {args.run_id}` again to resume",
    )
    control = get_control(store, args.run_id)
    if args.json:
        print(json.dumps({"run_id": args.run_id, "control": control_summary(store, args.run_id)}))
    else:
        print_summary(store, args.run_id)
    if control is not None and control.status == RunStatus.FAILED:
        print(f"error: the control of run {args.run_id} failed: {control.error}", file=sys.stderr)
        return 1
    return outcome.exit_code


def add_control_parser(sub) -> None:
    c = sub.add_parser("control", help="random cells at the run's edge counts, trained like its candidates")
    c.add_argument("run_id", type=int)
    c.add_argument(
        "--samples",
        type=int,
        help=f"random cells per edge count (default {DEFAULT_SAMPLES}, or the control's own when resuming)",
    )
    c.add_argument(
        "--edges",
        help="edge counts, comma-separated (default: the best snapshot's, the final "
        "snapshot's and one halfway between)",
    )
    c.add_argument("--json", action="store_true", help="end with one JSON object")
    c.add_argument("--store", help="run store (SQLite); default $AUTOSHRINK_STORE or runs/autoshrink.db")
    c.set_defaults(func=cmd_control)
