"""The live run panel of the Search page: status, Stop/Resume, progress, ETA, DAG, candidates.

Everything is read from the store on each refresh (a fragment that reruns itself every
REFRESH_S), so a second tab, a browser refresh and a run started from the CLI all show
the same thing; nothing here depends on having started the run in this session.
"""

from __future__ import annotations

import time

import streamlit as st

from core.cell.genotype import Genotype
from core.insight.draw import dag_graph
from core.insight.explain import candidate_rows, why_removed
from core.insight.format import SCORE_FORMULA, fmt_duration
from core.insight.progress import edge_progress
from core.insight.progress import eta_seconds as progress_eta
from core.insight.tradeoff import step_table
from core.search.config import SearchConfig
from core.search.evaluators.ray_eval import describe_cluster
from core.search.loop import step_candidates
from core.store.runs import RunRecord, StepRecord, Store, best_of
from ui.bundles import sample_header
from ui.control import control_badge
from ui.dag_view import run_layout, show_dag
from ui.downloads import dag_buttons, genotype_button, table_button
from ui.errors import report
from ui.resources import get_runner, get_store
from ui.selection import current_run, is_sample
from ui.status import rerun_on_change, status_header
from ui.tables import candidates_table

REFRESH_S = 2.0
MESSAGE_KEY = "live_message"


def progress_fraction(run: RunRecord, steps: list[StepRecord]) -> float:
    """Share of the edges to remove that are gone (core.insight.progress): steps are the
    wrong unit because pruning can take several edges in one step."""
    return edge_progress(run, steps).fraction


def eta_seconds(run: RunRecord, steps: list[StepRecord], candidate_times: list[float]) -> float | None:
    """Seconds left to the target edge count (core.insight.progress.eta_seconds)."""
    return progress_eta(run, steps, candidate_times)


def _stop(run_id: int) -> None:
    get_runner().stop(get_store(), run_id)
    st.session_state[MESSAGE_KEY] = f"stop requested for run {run_id}: it ends after the current batch"


def _resume(run_id: int) -> None:
    done = f"run {run_id} resumed from its last committed step"
    report(MESSAGE_KEY, lambda: get_runner().resume_search(get_store(), run_id), done)


@st.fragment(run_every=REFRESH_S)
def live_panel() -> None:
    """Re-read the chosen run and draw it; a status change (started, ended) triggers a full
    rerun so the sidebar and the buttons catch up."""
    run = current_run()
    if run is None:
        st.info("No run selected yet: pick a preset and press **Start search**.")
        return
    rerun_on_change(f"search run {run.id}", run.status)
    store = get_store()
    _header(run)
    steps = store.steps(run.id)
    _progress(store, run, steps)
    control_badge(store, run)
    if steps or run.status.live:
        _current(store, run, steps)


def _header(run: RunRecord) -> None:
    cfg = run.config
    st.subheader(f"Run #{run.id}: {run.task.upper()} · {cfg.get('preset')} · {cfg.get('data')}")
    summary = (
        f"N={cfg.get('nodes')}, k={cfg.get('k')}, {cfg.get('epochs')} epochs, "
        f"keep {cfg.get('keep_fraction')}, seed {cfg.get('seed')}, evaluator {run.evaluator or '-'}"
        + (f" on {describe_cluster(run.cluster)}" if run.cluster else "")
    )
    if is_sample(run):
        return sample_header(run)
    status_header(
        "run",
        run.id,
        run.status,
        run.device,
        summary,
        run.error,
        _stop,
        _resume,
        MESSAGE_KEY,
        "its last committed step",
        key="live",
    )


def _progress(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    p = run.progress
    prog = edge_progress(run, steps)
    text = prog.text()
    if run.status.live and p.active:
        text += f" · step {p.step}: candidate {min(p.candidate + 1, p.k)} of {p.k}"
    st.progress(prog.fraction, text=text)
    times = [c.wall_s for c in store.candidates(run.id)] + [d.get("wall_s", 0.0) for d in p.done]
    eta = eta_seconds(run, steps, [t for t in times if t > 0])
    start = run.started_at or run.created_at
    elapsed = (run.finished_at if not run.status.live and run.finished_at else time.time()) - start
    eta_text = f" · ETA {fmt_duration(eta)} to the target edge count (at the pace edges have gone so far)"
    st.caption(f"elapsed {fmt_duration(elapsed)}" + (eta_text if eta is not None else ""))


def _current(store: Store, run: RunRecord, steps: list[StepRecord]) -> None:
    """The DAG now (with the running step's candidates in blue) and the latest candidates."""
    cfg = SearchConfig.from_dict(run.config)
    p = run.progress
    if steps:
        current, next_step = steps[-1].genotype, steps[-1].step + 1
    else:
        current, next_step = Genotype.dense(cfg.task, cfg.nodes, cfg.seed), 0
    live = run.status.live and next_step > 0
    candidates = step_candidates(current, cfg.k, cfg.seed, next_step) if live else []
    title = (f"after step {steps[-1].step}: {current.num_edges} edges" if steps else "dense start") + (
        f"; step {next_step} candidates in blue" if candidates else ""
    )
    show_dag(
        current,
        run_layout(run, steps[0].genotype if steps else None),
        candidates=candidates,
        start=steps[0].genotype if steps else None,
        show_earlier=False,
        title=title,
    )
    dot = dag_graph(
        current, candidates=candidates, start=steps[0].genotype if steps else None, show_earlier=False, title=title
    )
    with st.container(horizontal=True):
        name = f"run{run.id}-step{steps[-1].step if steps else 0}"
        genotype_button(current, name, "live")
        dag_buttons(dot, name, "live")
    done = list(p.done) if run.status.live else []
    if done:
        st.markdown(f"**Step {p.step} so far**")
        candidates_table(candidate_rows(done, None, run.task, run.noise), run)
    elif steps:
        last = steps[-1]
        cands = [c.to_dict() for c in store.candidates(run.id, last.step)]
        st.markdown(f"**Step {last.step} candidates**")
        candidates_table(candidate_rows(cands, last.removed, run.task, run.noise), run)
        before = steps[-2].edges if len(steps) > 1 else None
        st.caption(why_removed(last.removed, cands, run.task, before, run.noise))
    best = best_of(steps)
    if best is not None:
        st.caption(
            f"Best snapshot so far: step {best.step}, {best.edges} edges, score {best.score:.4f} "
            f"({SCORE_FORMULA[run.task]})"
        )
    if steps:
        with st.container(horizontal=True):
            table_button(step_table(steps, run.task), "Step table (CSV)", f"run{run.id}-steps", "live-steps")
            if best is not None:
                genotype_button(best.genotype, f"run{run.id}-best", "live-best", label="Best genotype JSON")
