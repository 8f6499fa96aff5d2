"""A cell DAG as a graphviz graph (DARTS `visualize` style), and its DOT/SVG exports.

Why graphviz: the DOT text is what users download (and what `dot` turns into the SVG
download; without the `dot` program the page says so clearly instead of failing mid-page).
On screen the app draws DAGs itself (core.insight.dag_svg, on a run's fixed layout) and
takes only the colours below from here, so both drawings mean the same.

The exported drawing covers a plain genotype (Compare, Search) and a shrink step
(Explorer), where the step's candidate edges are highlighted, the removed edge is red,
edges that pruning dropped with it are red and dashed, edges removed at earlier steps are
faint (or hidden) and nodes no longer reachable from node 0 are faded.
"""

from __future__ import annotations

import shutil
from typing import Iterable

import graphviz

from core.cell.genotype import OPS, Edge, Genotype
from core.errors import UserError

OP_COLOURS = {
    "sep3x3": "#9ecae1",
    "conv1x1": "#fdae6b",  # CNN
    "tanh": "#9ecae1",
    "relu": "#a1d99b",
    "sigmoid": "#fdae6b",
    "identity": "#dadaeb",  # RNN
}
INPUT_COLOUR, OUTPUT_COLOUR, FADED = "#b4eeb4", "#eee8aa", "#bdbdbd"
CANDIDATE, REMOVED, EARLIER = "#2171b5", "#d62728", "#d9d9d9"
INPUT_LABEL = {"cnn": "0: input", "rnn": "0: x_t, h_{t-1}"}
OUTPUT_LABEL = {"cnn": "output\nconcat(leaves) + input", "rnn": "h_t\nmean(leaves)"}


NO_DOT = (
    "SVG export needs Graphviz's `dot` program, which is not installed here "
    "(e.g. `apt install graphviz`); the DOT download works without it"
)


class DrawError(UserError, RuntimeError):
    """The DAG cannot be exported (e.g. Graphviz's `dot` program is missing): one line."""


def dag_graph(
    g: Genotype,
    *,
    candidates: Iterable[Edge] = (),
    removed: Edge | None = None,
    start: Genotype | None = None,
    show_earlier: bool = True,
    title: str = "",
) -> graphviz.Digraph:
    """Draw `g` (the DAG before a step's removal, or any genotype when nothing is emphasised).

    candidates: edges tried at this step (blue); removed: the one that went (red). start: the
    search's dense DAG, so edges it has and `g` lacks are drawn as removed earlier (faint,
    or left out when show_earlier is False).
    """
    candidates = set(candidates)
    after = g.without_edge(removed) if removed is not None else g
    live_after = after.reachable()
    dot = graphviz.Digraph(name="cell", graph_attr=_GRAPH, node_attr=_NODE, edge_attr=_EDGE)
    _nodes(dot, g, live_after, after.leaves())
    _edges(dot, g, after, candidates, removed)
    if start is not None and show_earlier:
        for i, j in sorted(set(start.edges) - set(g.edges)):
            dot.edge(f"n{i}", f"n{j}", color=EARLIER, style="dashed", constraint="false")
    emphasis = bool(candidates) or removed is not None or (start is not None and show_earlier)
    dot.attr(label=_legend(g.kind, emphasis, title), labelloc="b")
    return dot


_GRAPH = {"rankdir": "LR", "fontname": "helvetica", "nodesep": "0.35", "ranksep": "0.6"}
_NODE = {
    "shape": "rect",
    "style": "rounded,filled",
    "fontname": "helvetica",
    "fontsize": "13",
    "penwidth": "1.5",
    "height": "0.5",
    "width": "0.5",
    "align": "center",
}
_EDGE = {"fontname": "helvetica", "fontsize": "11", "penwidth": "1.5"}


def _nodes(dot: graphviz.Digraph, g: Genotype, live: frozenset[int], leaves: tuple[int, ...]) -> None:
    """Input, op nodes (coloured by op, leaves double-bordered, pruned ones faded), output."""
    dot.node("n0", INPUT_LABEL[g.kind], fillcolor=INPUT_COLOUR)
    for j in range(1, g.n_nodes):
        op = g.ops[j]
        if j in live:
            dot.node(
                f"n{j}", f"{j}: {op}", fillcolor=OP_COLOURS.get(op, "white"), peripheries="2" if j in leaves else "1"
            )
        else:
            dot.node(
                f"n{j}",
                f"{j}: {op}\n(pruned)",
                fillcolor="white",
                color=FADED,
                fontcolor=FADED,
                style="rounded,filled,dashed",
            )
    dot.node("out", OUTPUT_LABEL[g.kind], fillcolor=OUTPUT_COLOUR)
    for leaf in leaves:
        dot.edge(f"n{leaf}", "out", style="dashed", color="#636363")
    if g.kind == "cnn":
        dot.edge("n0", "out", style="dotted", color="#636363", label="+", constraint="false")


def _edges(dot: graphviz.Digraph, g: Genotype, after: Genotype, candidates: set[Edge], removed: Edge | None) -> None:
    """Every edge of `g`, styled by what this step did to it."""
    kept = set(after.edges)
    for edge in g.edges:
        i, j = edge
        if edge == removed:
            dot.edge(f"n{i}", f"n{j}", color=REMOVED, penwidth="3", label="removed", fontcolor=REMOVED)
        elif edge not in kept:
            dot.edge(f"n{i}", f"n{j}", color=REMOVED, style="dashed", label="pruned", fontcolor=REMOVED)
        elif edge in candidates:
            dot.edge(f"n{i}", f"n{j}", color=CANDIDATE, penwidth="2.5")
        else:
            dot.edge(f"n{i}", f"n{j}")


def _legend(kind: str, emphasis: bool, title: str) -> str:
    """The graph label: an HTML-like table with the title, op colours and, when a step is
    shown, what the edge styles mean. One label keeps it under the DAG whatever its shape."""
    cells = [(INPUT_COLOUR, "input"), *((OP_COLOURS[op], op) for op in OPS[kind]), (OUTPUT_COLOUR, "output")]
    row = "".join(f'<td bgcolor="{c}"> {name} </td>' for c, name in cells)
    notes = ["double border: leaf"]
    if emphasis:
        notes = [
            f'<font color="{CANDIDATE}">blue: candidate</font>',
            f'<font color="{REMOVED}">red: removed</font>',
            f'<font color="{REMOVED}">red dashed: pruned with it</font>',
            '<font color="#969696">grey dashed: removed earlier</font>',
            *notes,
        ]
    lines = "<br/>".join(" · ".join(notes[i : i + 3]) for i in range(0, len(notes), 3))
    edges = f'<tr><td colspan="{len(cells)}" border="0"><font point-size="11">{lines}</font></td></tr>'
    head = f'<tr><td colspan="{len(cells)}" border="0"><b>{_html(title)}</b></td></tr>' if title else ""
    return f'<<table border="0" cellborder="1" cellspacing="2">{head}<tr>{row}</tr>{edges}</table>>'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def dot_source(dot: graphviz.Digraph) -> str:
    """The DOT text, for download and for renderers that take a string."""
    return dot.source


def svg_bytes(dot: graphviz.Digraph) -> bytes:
    """Render with Graphviz's `dot`; a missing binary is a DrawError with the fix, not a traceback."""
    try:
        return dot.pipe(format="svg")
    except graphviz.ExecutableNotFound:
        raise DrawError(NO_DOT) from None
    except graphviz.CalledProcessError as exc:
        raise DrawError(f"Graphviz could not render the DAG: {str(exc).splitlines()[0]}") from None


def svg_problem() -> str:
    """Why SVG export is unavailable here ('' when Graphviz's `dot` is on PATH), so the app
    can say so next to the DOT download instead of offering a button that fails."""
    return "" if shutil.which("dot") else NO_DOT
