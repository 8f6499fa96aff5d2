"""The Compare page body: two to four genotype slots, then DAGs, costs, unique edges, summaries."""
from __future__ import annotations

import streamlit as st

from core.insight.compare import (
    CompareError,
    CompareItem,
    common_kind,
    cost_rows,
    only_in_text,
    torchinfo_table,
)
from core.insight.draw import dag_graph
from core.store.runs import RunRecord, Store
from ui.downloads import dag_with_downloads, table_button
from ui.errors import one_line
from ui.sources import pick_item

COUNT_KEY = "compare_count"


def _default_sources(run: RunRecord | None, n: int) -> list[str]:
    """Start with something useful: the chosen run's best against a published cell."""
    first = ["Run best snapshot", "Preset"] if run is not None else ["Preset", "Preset"]
    return (first + ["Preset"] * 4)[:n]


def compare_view(store: Store, run: RunRecord | None) -> None:
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
            dag_with_downloads(dag_graph(it.genotype, title=it.label), it.genotype, it.label, f"compare-dag{slot}")
    st.markdown("**Edges only one of them has**")
    st.markdown("\n".join(f"- {line}" for line in only_in_text(picked)))
    try:
        kind = common_kind(picked)
    except CompareError as exc:
        st.error(one_line(exc), icon=":material/error:")
        return
    with st.spinner("Costing the networks (the first ImageNet-224 costing takes a moment)..."):
        rows = cost_rows(picked)
    st.markdown("**Cost**" + (" (CNN: the spec's CIFAR proxy net and the ImageNet-224 ShrinkCNN body)"
                              if kind == "cnn" else " (RNN: the language model, FLOPs = edges x h²)"))
    st.dataframe(rows, hide_index=True, width="stretch")
    table_button(rows, "Comparison (CSV)", "compare", "compare-table")
    if kind == "cnn":
        for slot, it in enumerate(picked):
            with st.expander(f"torchinfo summary: {it.label} (proxy network)"):
                st.code(torchinfo_table(it.genotype.to_json()), language=None)
