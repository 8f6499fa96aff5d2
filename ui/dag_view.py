"""Show a run's DAG as inline SVG on the run's fixed layout (core.insight.layout).

The layout is computed once per run (from its dense start) and kept for the session, so
every page and every step draws nodes in the same places.
"""

from __future__ import annotations

import streamlit as st

from core.cell.genotype import Genotype
from core.insight.dag_svg import dag_svg
from core.insight.layout import DagLayout, dag_layout
from core.search.config import SearchConfig
from core.store.runs import RunRecord


@st.cache_data(show_spinner=False, max_entries=64)
def _layout(dense_json: str) -> DagLayout:
    return dag_layout(Genotype.from_json(dense_json))


def run_layout(run: RunRecord, first: Genotype | None = None) -> DagLayout:
    """The run's layout: from its dense start (the first step's genotype, else rebuilt from
    the config, which is what step 0 trains)."""
    if first is None:
        cfg = SearchConfig.from_dict(run.config)
        first = Genotype.dense(cfg.task, cfg.nodes, cfg.seed)
    return _layout(first.to_json())


def genotype_layout(g: Genotype) -> DagLayout:
    """A stand-alone genotype (Compare, presets) laid out as if it were its own dense start."""
    return _layout(Genotype.dense(g.kind, g.n_nodes, 0).to_json())


def show_dag(g: Genotype, layout: DagLayout, min_px: int = 0, **emphasis) -> None:
    """Draw `g` full width (inline SVG, so no Graphviz is needed); `emphasis` goes to
    core.insight.dag_svg.dag_svg. min_px: below this width the drawing scrolls sideways
    instead of shrinking its labels (0: always fit the column, as in Compare's narrow ones)."""
    st.markdown(
        f"<div class='autoshrink-dag' style='width:100%; overflow-x:auto'><div style='min-width:{min_px}px'>"
        f"{dag_svg(g, layout, **emphasis)}</div></div>",
        unsafe_allow_html=True,
    )
