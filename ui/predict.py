"""Predict the edge: the student plays AutoShrink. For each step they see the DAG and its k
candidate edges (no scores), pick the one they think the search removes and lock it in;
then the scores appear, the pick is scored (rank, score gap; core.insight.predict) and a
running tally grows over the run.

Recorded steps are revealed as soon as a pick is locked in. On a live run the next step's
candidates are known before they train (core.search.loop.step_candidates, seeded), so a
student can pick while the search works; the page refreshes and reveals when the step
commits. Picks live in the browser session only: nothing is written to the store, so this
works in view-only mode.
"""

from __future__ import annotations

import streamlit as st

from core.cell.genotype import edge_str
from core.insight.explain import why_removed
from core.insight.format import SCORE_FORMULA
from core.insight.predict import PickResult, pick_options, score_pick, tally
from core.search.config import SearchConfig
from core.search.loop import step_candidates
from core.store.runs import RunRecord, StepRecord, Store
from ui.charts import score_bars
from ui.dag_view import run_layout, show_dag
from ui.follow import is_live, live_badge
from ui.step_page import step_page

PICK_KEY = "predict_pick"


def _state(run_id: int) -> dict:
    """This session's game on a run: the step being guessed, locked picks, scored results."""
    return st.session_state.setdefault(f"predict_run{run_id}", {"step": 1, "locked": {}, "results": {}})


def _lock(run_id: int, step: int) -> None:
    pick = st.session_state.get(f"{PICK_KEY}_{run_id}_{step}")
    if pick is not None:
        _state(run_id)["locked"][step] = pick


def _go(run_id: int, step: int) -> None:
    _state(run_id)["step"] = step


def _restart(run_id: int) -> None:
    st.session_state.pop(f"predict_run{run_id}", None)


def predict_page(store: Store, run: RunRecord | None) -> None:
    step_page(
        store,
        run,
        "predict",
        _game,
        "No run to play yet: start one on the Search page (or ask your instructor to).",
        f"Run {run.id if run else '-'} has no committed step yet: the first edge to guess comes after "
        "the dense baseline.",
    )


def _game(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    game = _state(run.id)
    n = game["step"] = max(1, min(game["step"], len(steps)))
    live_badge(run)
    _score_locked(store, run, steps, game)
    if n < len(steps):
        _play(run, steps[n - 1], n, [c.to_dict() for c in store.candidates(run.id, n)], steps, committed=True)
    elif is_live(run):
        cfg = SearchConfig.from_dict(run.config)
        upcoming = [{"edge": e} for e in step_candidates(steps[-1].genotype, cfg.k, cfg.seed, n)]
        _play(run, steps[n - 1], n, upcoming, steps, committed=False)
    else:
        st.success(f"That was the last step of run {run.id}.")
    _tally(run, game)


def _score_locked(store: Store, run: RunRecord, steps: list[StepRecord], game: dict) -> None:
    """Score every locked pick whose step has committed (a live pick gets scored here the
    moment its step lands)."""
    for step, pick in game["locked"].items():
        if step not in game["results"] and step < len(steps):
            cands = [c.to_dict() for c in store.candidates(run.id, step)]
            game["results"][step] = score_pick(step, tuple(pick), steps[step].removed, cands)


def _play(
    run: RunRecord, before: StepRecord, n: int, cands: list[dict], steps: list[StepRecord], committed: bool
) -> None:
    game = _state(run.id)
    options = pick_options(cands)
    result: PickResult | None = game["results"].get(n)
    layout = run_layout(run, steps[0].genotype)
    st.markdown(f"#### Step {n}: which of the {len(options)} candidate edges will AutoShrink remove?")
    if result is None:
        _ask(run, before, n, options, game["locked"].get(n), layout, committed)
    else:
        _reveal(run, before, steps[n], n, cands, options, result, layout, more=n + 1 < len(steps))


def _ask(run: RunRecord, before: StepRecord, n: int, options: list, locked, layout, committed: bool) -> None:
    """Before the reveal: the pick pills, the DAG with the candidates, and the lock button (or,
    once locked on a live step, a note that the scores come when the step commits)."""
    key = f"{PICK_KEY}_{run.id}_{n}"
    choice = st.pills("Your pick", options, format_func=edge_str, key=key, disabled=locked is not None)
    show_dag(
        before.genotype,
        layout,
        min_px=720,
        candidates=options,
        pick=tuple(locked or choice or ()) or None,
        title=f"before step {n}: {before.genotype.num_edges} edges; candidates in blue",
    )
    if locked is None:
        st.button(
            "Lock in my pick",
            key="predict_lock",
            type="primary",
            on_click=_lock,
            args=(run.id, n),
            disabled=choice is None,
            icon=":material/lock:",
        )
        st.caption(
            "Think about cost and quality: removing an edge saves compute, but the cell must still "
            f"learn. The search keeps the removal with the best score ({SCORE_FORMULA[run.task]})."
        )
    elif not committed:
        st.info(
            f"Locked in {edge_str(tuple(locked))}. Step {n} is training now; the scores appear here "
            "as soon as it commits.",
            icon=":material/hourglass_top:",
        )


def _reveal(
    run: RunRecord,
    before: StepRecord,
    step: StepRecord,
    n: int,
    cands: list[dict],
    options: list,
    result: PickResult,
    layout,
    more: bool,
) -> None:
    """After the reveal: the verdict, the score bars with the pick, why the edge went, and the DAG."""
    (st.success if result.hit else st.warning)(result.sentence())
    left, right = st.columns([3, 2], gap="large")
    with left:
        bars = score_bars(cands, step.removed, run.task, pick=result.pick, height=60 + 28 * len(options))
        st.plotly_chart(bars, width="stretch", key=f"predict_bars_{n}")
    with right:
        st.info(why_removed(step.removed, cands, run.task, before.edges), icon=":material/lightbulb:")
        st.caption(SCORE_FORMULA[run.task])
        if more or is_live(run):
            st.button(
                "Next step",
                key="predict_next",
                type="primary",
                on_click=_go,
                args=(run.id, n + 1),
                icon=":material/arrow_forward:",
                shortcut="Right",
            )
    show_dag(
        before.genotype,
        layout,
        min_px=720,
        candidates=options,
        removed=step.removed,
        pick=None if result.hit else result.pick,
        title=f"step {n}: AutoShrink removed {edge_str(step.removed)}",
    )


def _tally(run: RunRecord, game: dict) -> None:
    results = [game["results"][s] for s in sorted(game["results"])]
    st.divider()
    t = tally(results)
    cols = st.columns(4)
    cols[0].metric("Right", f"{t.hits} / {t.picks}")
    cols[1].metric(
        "Mean rank",
        "-" if t.mean_rank is None else f"{t.mean_rank:.1f}",
        help="1 = you picked the removed edge; k = the worst-scoring candidate",
    )
    cols[2].metric(
        "Mean score gap",
        "-" if t.mean_gap is None else f"{t.mean_gap:.4f}",
        help="the removed edge's score minus your pick's, averaged over your picks",
    )
    cols[3].metric(
        "Random picker",
        "-" if t.chance is None else f"{t.chance:.1f}",
        help="hits a random pick would expect over the same steps",
    )
    if results:
        st.dataframe(
            [
                {
                    "step": r.step,
                    "your pick": edge_str(r.pick),
                    "removed": edge_str(r.removed),
                    "rank": f"{r.rank} of {r.of}",
                    "score gap": None if r.gap is None else round(r.gap, 4),
                }
                for r in results
            ],
            hide_index=True,
            width="stretch",
        )
    with st.container(horizontal=True):
        st.button("Start over", key="predict_restart", on_click=_restart, args=(run.id,), icon=":material/restart_alt:")
