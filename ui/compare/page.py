"""The Compare page: two to four genotype slots, then DAGs, costs, unique edges, summaries."""

from __future__ import annotations

import streamlit as st

from core.insight.compare import (
    IMAGENET_NET,
    PROXY_NET,
    CompareError,
    CompareItem,
    common_kind,
    cost_rows,
    only_in_text,
    torchinfo_table,
)
from core.insight.draw import dag_graph
from core.store.runs import RunRecord, Store
from ui.dag_view import genotype_layout, show_dag
from ui.downloads import dag_buttons, genotype_button, table_button
from ui.errors import one_line
from ui.sources import pick_item

COUNT_KEY = "compare_count"


def _default_sources(run: RunRecord | None, n: int) -> list[str]:
    """Start with something useful: the chosen run's best against a published cell."""
    first = ["Run best snapshot", "Preset"] if run is not None else ["Preset", "Preset"]
    return (first + ["Preset"] * 4)[:n]


def compare_columns(rows: list[dict]) -> dict:
    """Costs in compact form (3.64M, 384M); the CSV keeps the exact numbers."""
    keys = [k for k in (rows[0] if rows else {}) if k.startswith(("params", "MACs", "LM params", "cell FLOPs"))]
    return {k: st.column_config.NumberColumn(k, format="compact") for k in keys}


def compare_page(store: Store, run: RunRecord | None) -> None:
    n = st.radio("How many genotypes", (2, 3, 4), horizontal=True, key=COUNT_KEY)
    defaults = _default_sources(run, n)
    items: list[CompareItem | None] = []
    for slot, col in enumerate(st.columns(n)):
        with col, st.container(border=True):
            items.append(pick_item(slot, store, run, defaults[slot]))
    picked = [it for it in items if it is not None]
    if len(picked) < 2:
        st.info("Pick at least two genotypes to compare.")
        return
    for slot, (col, it) in enumerate(zip(st.columns(len(picked)), picked)):
        with col:
            st.markdown(f"**{it.label}** · {it.source} · {it.genotype.pruned().num_edges} edges")
            show_dag(it.genotype, genotype_layout(it.genotype), title=it.label)
            with st.container(horizontal=True):
                genotype_button(it.genotype, it.label, f"compare-dag{slot}")
                dag_buttons(dag_graph(it.genotype, title=it.label), it.label, f"compare-dag{slot}")
    st.markdown("**Edges only one of them has**")
    st.markdown("\n".join(f"- {line}" for line in only_in_text(picked)))
    try:
        kind = common_kind(picked)
    except CompareError as exc:
        st.error(one_line(exc), icon=":material/error:")
        return
    imagenet = kind == "cnn" and st.toggle(
        f"Also cost each cell in the {IMAGENET_NET} body",
        key="compare_imagenet",
        help="the paper's network: about a second per new cell on a CPU (then remembered)",
    )
    with st.spinner(f"Costing the networks{' in ' + IMAGENET_NET if imagenet else ''}..."):
        rows = cost_rows(picked, imagenet=imagenet)
    st.markdown(
        "**Cost**"
        + (
            f" (CNN: every column names the network it was measured on; the {PROXY_NET} is "
            "the same for every cell, so a run's own pages, which use that run's proxy net "
            "and data, show other numbers)"
            if kind == "cnn"
            else " (RNN: the language model, FLOPs = edges x h²)"
        )
    )
    st.dataframe(rows, hide_index=True, width="stretch", column_config=compare_columns(rows))
    table_button(rows, "Comparison (CSV)", "compare", "compare-table")
    if kind == "cnn" and st.toggle("Show torchinfo layer tables (proxy network)", key="compare_torchinfo"):
        for slot, it in enumerate(picked):
            with st.expander(f"torchinfo summary: {it.label} (proxy network)"):
                st.code(torchinfo_table(it.genotype.to_json()), language=None)
