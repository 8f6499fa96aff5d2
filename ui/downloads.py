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


def _download(label: str, data, file_name: str, mime: str, key: str, disabled: bool = False) -> None:
    """One download button as every one here is: no rerun on click, the download icon."""
    st.download_button(
        label,
        data,
        file_name=file_name,
        mime=mime,
        key=key,
        on_click="ignore",
        icon=":material/download:",
        disabled=disabled,
    )


def genotype_button(g: Genotype, name: str, key: str, label: str = "Genotype JSON") -> None:
    """The genotype as the JSON that the CLI, Compare and the presets read, named `name`."""
    named = Genotype(g.kind, g.ops, g.edges, name=name)
    _download(label, named.to_json(), f"{name}.json", "application/json", f"{key}-json")


def dag_buttons(dot: graphviz.Digraph, name: str, key: str) -> None:
    """DOT and SVG downloads; where `dot` is missing, the reason instead of the SVG button."""
    _download("DAG (DOT)", dot_source(dot), f"{name}.dot", "text/vnd.graphviz", f"{key}-dot")
    problem = svg_problem()
    if problem:
        st.caption(problem)
    else:
        _download("DAG (SVG)", lambda: svg_bytes(dot), f"{name}.svg", "image/svg+xml", f"{key}-svg")


def table_button(rows: Sequence[dict], label: str, name: str, key: str) -> None:
    """A table as CSV (greyed out while it has no rows, rather than offering an empty file)."""
    _download(label, csv_text(rows), f"{name}.csv", "text/csv", f"{key}-csv", disabled=not rows)
