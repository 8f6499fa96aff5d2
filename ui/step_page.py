"""The skeleton the step pages share: Explorer, Presenter and Predict each pick a run, wait for
its first committed step, follow it while it is live and draw one step's DAG on the run's
fixed layout with that step's candidates.

step_page does the common part (no run, no step yet, the fragment that re-reads the store and
reruns on a status change); a page passes the body that draws its own view of the steps, and
shown_step gives that body the step as every page draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st

from core.cell.genotype import Genotype, edge_str
from core.insight.layout import DagLayout
from core.store.runs import RunRecord, StepRecord, Store
from ui.dag_view import run_layout
from ui.follow import is_live, live_badge, refresh_every, reread

StepBody = Callable[[Store, RunRecord, list[StepRecord]], None]


@dataclass(frozen=True)
class StepShown:
    """Step `n` of a run as a step page draws it: the cell before the removal and the
    candidates tried on it (as dicts, which is what core.insight reads)."""

    run: RunRecord
    steps: list[StepRecord]
    n: int
    cands: list[dict]

    @property
    def step(self) -> StepRecord:
        return self.steps[self.n]

    @property
    def parent(self) -> Genotype:
        """The cell the step removed an edge from (step 0, the baseline, is its own parent)."""
        return self.steps[self.n - 1].genotype if self.n > 0 else self.step.genotype

    @property
    def tried(self) -> list[tuple[int, int]]:
        return [tuple(c["edge"]) for c in self.cands if c["edge"] is not None]

    @property
    def edges_before(self) -> int | None:
        return self.steps[self.n - 1].edges if self.n > 0 else None

    @property
    def start(self) -> Genotype:
        return self.steps[0].genotype

    @property
    def layout(self) -> DagLayout:
        return run_layout(self.run, self.start)


def shown_step(store: Store, run: RunRecord, steps: list[StepRecord], n: int) -> StepShown:
    return StepShown(run, steps, n, [c.to_dict() for c in store.candidates(run.id, n)])


def step_title(step: StepRecord) -> str:
    what = "dense start (baseline)" if step.removed is None else f"removed {edge_str(step.removed)}"
    return f"step {step.step}: {what}; {step.edges} edges left"


def step_page(
    store: Store,
    run: RunRecord | None,
    page: str,
    body: StepBody,
    no_run: str,
    no_steps: str,
    every: float | None = None,
) -> None:
    """Draw `body(store, run, steps)` in a fragment that ticks every `every` seconds (default:
    while the run or its control is live) and re-reads the run first; a page with no run, or
    a finished run with no step, gets one line instead."""
    if run is None:
        st.info(no_run)
        return
    if not store.steps(run.id) and not is_live(run):
        st.info(no_steps)
        return
    st.fragment(_tick, run_every=every or refresh_every(run))(store, run, page, body, no_steps)


def _tick(store: Store, run: RunRecord, page: str, body: StepBody, no_steps: str) -> None:
    run = reread(run, page)
    steps = store.steps(run.id)
    if not steps:
        live_badge(run)
        st.info(no_steps)
        return
    body(store, run, steps)


def step_button(where, page: str, delta: int, move: Callable[[int, int], None], n: int, last: int, icon: str) -> None:
    """Previous (delta -1, the Left key) or Next (delta +1, the Right key) of a step page, drawn
    in `where` (st or a column); `move(target, last)` is its callback. The button carries the step
    it leads to (n + delta), not the delta: under load Streamlit can run one press's callback twice
    (a live refresh re-sends the trigger), and a second "go to step 3" is harmless where a second
    "+1" skipped a step."""
    forward = delta > 0
    where.button(
        "Next" if forward else "Previous",
        key=f"{page}_{'next' if forward else 'prev'}",
        on_click=move,
        args=(min(max(n + delta, 0), last), last),
        shortcut="Right" if forward else "Left",
        icon=f":material/{icon}:",
        disabled=n >= last if forward else n <= 0,
    )
