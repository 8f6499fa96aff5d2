"""Where Compare can take a genotype from: one picker per source, all producing CompareItems.

A source is a label and a function that draws its widgets (keys prefixed by the slot) and
returns a CompareItem, or None while nothing valid is picked. Adding a source, such as
final-training jobs with measured accuracy, is one more function and one more SOURCES
entry; the Compare page itself does not change.
"""

from __future__ import annotations

from typing import Callable

import streamlit as st

from core.cell.genotype import Genotype, edge_str
from core.cell.presets import load_preset, preset_names, preset_network
from core.data.spec import PTB_VOCAB
from core.errors import UserError
from core.insight.compare import CompareItem, run_lm
from core.store.controls import control_cells
from core.store.runs import RunRecord, StepRecord, Store, best_of
from ui.errors import one_line
from ui.sidebar import run_label
from ui.train.source import pick_trained

Picker = Callable[[str, Store, "RunRecord | None"], "CompareItem | None"]


def _run_choice(key: str, store: Store, default: RunRecord | None) -> RunRecord | None:
    runs = store.list_runs()
    if not runs:
        st.caption("No runs in the store yet.")
        return None
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    index = ids.index(default.id) if default is not None and default.id in ids else 0
    run_id = st.selectbox("Run", ids, index=index, key=f"{key}-run", format_func=lambda i: run_label(by_id[i]))
    return by_id[run_id]


def _from_step(run: RunRecord, steps: list[StepRecord], step: StepRecord, label: str) -> CompareItem:
    quality = step.perplexity if run.task == "rnn" else step.accuracy
    g = step.genotype
    return CompareItem(
        label=label,
        genotype=Genotype(g.kind, g.ops, g.edges, name=label),
        source=f"run {run.id}",
        quality=quality,
        quality_note=f"run {run.id} proxy ({run.config.get('data')})",
        **run_lm(run, steps),
    )


def pick_run_step(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    run = _run_choice(key, store, default)
    if run is None:
        return None
    steps = store.steps(run.id)
    if not steps:
        st.caption(f"Run {run.id} has no committed step yet.")
        return None
    labels = {
        s.step: f"step {s.step}: "
        + ("dense start (baseline)" if s.removed is None else f"removed {edge_str(s.removed)}")
        + f" ({s.edges} edges)"
        for s in steps
    }
    n = st.selectbox("Step", list(labels), index=len(steps) - 1, key=f"{key}-step", format_func=labels.get)
    return _from_step(run, steps, steps[n], f"run{run.id}-step{n}")


def pick_run_best(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    run = _run_choice(key, store, default)
    if run is None:
        return None
    steps = store.steps(run.id)
    best = best_of(steps)
    if best is None:
        st.caption(f"Run {run.id} has no scored step after the dense baseline yet.")
        return None
    st.caption(f"best snapshot: step {best.step}, {best.edges} edges, score {best.score:.4f}")
    return _from_step(run, steps, best, f"run{run.id}-best")


def pick_control_cell(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    """A random cell of a run's control (core.search.control): chance, to set beside the chosen cell."""
    run = _run_choice(key, store, default)
    if run is None:
        return None
    cells = control_cells(store, run.id)
    if not cells:
        st.caption(f"Run {run.id} has no random control yet (Trade-offs: Run a random control).")
        return None
    labels = {
        i: f"{c.target} edges, cell {c.sample}"
        + (f" ({c.edges} after pruning)" if c.edges != c.target else "")
        + (f", score {c.score:.4f}" if c.score is not None else f", {c.status}")
        for i, c in enumerate(cells)
    }
    cell = cells[st.selectbox("Random cell", list(labels), key=f"{key}-control", format_func=labels.get)]
    label = f"run{run.id}-random{cell.target}e-{cell.sample}"
    g = cell.genotype
    return CompareItem(
        label=label,
        genotype=Genotype(g.kind, g.ops, g.edges, name=label),
        source=f"run {run.id} control",
        quality=cell.perplexity if run.task == "rnn" else cell.accuracy,
        quality_note=f"run {run.id} proxy ({run.config.get('data')})",
        **run_lm(run, store.steps(run.id)),
    )


def pick_preset(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    names = preset_names()
    if not names:
        st.caption("No presets shipped in assets/.")
        return None
    fallback = "shrinkrnn" if default is not None and default.task == "rnn" else "shrinkcnn-a"
    index = names.index(fallback) if fallback in names else 0
    name = st.selectbox("Preset", names, index=index, key=f"{key}-preset")
    g, net = load_preset(name), preset_network(name)
    return CompareItem(
        label=g.name or name,
        genotype=g,
        source="preset",
        emb=int(net.get("emb", 100)),
        hidden=int(net.get("hidden", 100)),
        vocab=int(net.get("vocab", PTB_VOCAB)),
    )


def pick_upload(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    file = st.file_uploader("Genotype JSON", type=["json"], key=f"{key}-upload")
    if file is None:
        st.caption("Upload a genotype JSON (as exported here or by `python -m core export`).")
        return None
    try:
        g = Genotype.from_json(file.getvalue())
    except UserError as exc:
        st.error(f"{file.name}: {one_line(exc)}", icon=":material/error:")
        return None
    label = g.name or file.name.rsplit(".", 1)[0]
    return CompareItem(label=label, genotype=g, source=f"upload {file.name}")


SOURCES: dict[str, Picker] = {
    "Run step": pick_run_step,
    "Run best snapshot": pick_run_best,
    "Random control cell": pick_control_cell,
    "Preset": pick_preset,
    "Upload JSON": pick_upload,
    "Trained model": pick_trained,
}


def pick_item(slot: int, store: Store, default_run: RunRecord | None, default_source: str) -> CompareItem | None:
    """Slot `slot`'s source choice and picker."""
    key = f"compare{slot}"
    names = list(SOURCES)
    source = st.selectbox(f"Genotype {slot + 1} from", names, index=names.index(default_source), key=f"{key}-source")
    return SOURCES[source](key, store, default_run)
