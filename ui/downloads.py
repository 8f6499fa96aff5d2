"""Download buttons: genotype JSON, the DAG as DOT and SVG, tables as CSV.

None of them reruns the app (on_click="ignore"), and SVG is rendered only when clicked,
so a page full of downloads costs nothing until one is used.
"""

from __future__ import annotations

import csv
import io
from typing import Sequence

import graphviz
import streamlit as st

from core.cell.genotype import Genotype
from core.insight.draw import dot_source, svg_bytes, svg_problem


def csv_text(rows: Sequence[dict]) -> str:
    """Rows (dicts with the same keys) as CSV text; empty rows give an empty file."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def genotype_button(g: Genotype, name: str, key: str, label: str = "Genotype JSON") -> None:
    """The genotype as the JSON that the CLI, Compare and the presets read, named `name`."""
    named = Genotype(g.kind, g.ops, g.edges, name=name)
    st.download_button(
        label,
        named.to_json(),
        file_name=f"{name}.json",
        mime="application/json",
        key=f"{key}-json",
        on_click="ignore",
        icon=":material/download:",
    )


def dag_buttons(dot: graphviz.Digraph, name: str, key: str) -> None:
    """DOT and SVG downloads; where `dot` is missing, the reason instead of the SVG button."""
    st.download_button(
        "DAG (DOT)",
        dot_source(dot),
        file_name=f"{name}.dot",
        mime="text/vnd.graphviz",
        key=f"{key}-dot",
        on_click="ignore",
        icon=":material/download:",
    )
    problem = svg_problem()
    if problem:
        st.caption(problem)
    else:
        st.download_button(
            "DAG (SVG)",
            lambda: svg_bytes(dot),
            file_name=f"{name}.svg",
            mime="image/svg+xml",
            key=f"{key}-svg",
            on_click="ignore",
            icon=":material/download:",
        )


def table_button(rows: Sequence[dict], label: str, name: str, key: str) -> None:
    """A table as CSV (greyed out while it has no rows, rather than offering an empty file)."""
    st.download_button(
        label,
        csv_text(rows),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"{key}-csv",
        on_click="ignore",
        icon=":material/download:",
        disabled=not rows,
    )
