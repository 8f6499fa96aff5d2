"""The Trade-offs page: every candidate's quality against cost, the Pareto front, the per-step
series, the step table and the random control's cells beside them."""

from __future__ import annotations

import streamlit as st

from core.insight.tradeoff import (
    COSTS,
    QUALITY,
    candidate_points,
    front_of,
    step_series,
    step_table,
)
from core.store.runs import RunRecord, StepRecord, Store, best_of
from ui.control import control_panel, trade_off_controls
from ui.downloads import genotype_button, table_button
from ui.figures import steps_figure, tradeoff_figure
from ui.follow import live_watch
from ui.noise import noise_caption, with_verdicts
from ui.resources import get_store
from ui.selection import current_run
from ui.tables import column_config, score_caption


def tradeoffs_page() -> None:
    """The page for the chosen run; while it is live it polls and redraws as steps commit."""
    run = current_run()
    store = get_store()
    steps = store.steps(run.id) if run is not None else []
    live_watch(run, len(steps), "tradeoffs")
    if run is None:
        st.info("No run yet: start one on the Search page.")
    elif not steps:
        st.info(f"Run {run.id} has no committed step yet.")
    else:
        _figures(store, run, steps)
        _table(store, run, steps)


def _figures(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    task = run.task
    costs = dict(COSTS[task])
    cost_key = st.radio("Cost axis", list(costs), format_func=costs.get, horizontal=True, key="tradeoff_cost")
    points = candidate_points(store.candidates(run.id), steps, task)
    series = step_series(steps, task)
    better = "higher" if QUALITY[task].higher_is_better else "lower"
    controls = trade_off_controls(store, run)
    st.caption(
        f"Each dot is one trained candidate ({QUALITY[task].label}, {better} is better); the red line is "
        "the Pareto front, the dotted line the chosen snapshots, the star the best snapshot"
        + ("; grey crosses are the random control's cells." if controls else ".")
    )
    st.plotly_chart(
        tradeoff_figure(points, front_of(points, cost_key, task), series, task, cost_key, controls),
        width="stretch",
        key="tradeoff_scatter",
    )
    control_panel(store, run, steps, len(controls))
    st.plotly_chart(steps_figure(series, task), width="stretch", key="tradeoff_steps")


def _table(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    noise_caption(run)
    rows = with_verdicts(step_table(steps, run.task), store, run)
    st.dataframe(rows, hide_index=True, width="stretch", column_config=column_config(run))
    score_caption(run.task)
    table_button(rows, "Step table (CSV)", f"run{run.id}-steps", "tradeoff-steps")
    best = best_of(steps)
    if best is not None:
        genotype_button(best.genotype, f"run{run.id}-best", "tradeoff-best", label="Best genotype JSON")
