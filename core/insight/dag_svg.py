"""A shrink step's DAG as SVG, drawn on a run's fixed layout (core.insight.layout).

Drawn here rather than by Graphviz so that nodes never move between steps, the app needs
no `dot` binary and the browser shows it as plain inline SVG. Edges are arcs: even spans
above the line of nodes, odd spans below, so the dense N=8 cell (28 edges) splits into two
readable fans. Every node is a <g class="node" data-node="j"> and every edge a
<path data-edge="i-j">, which is what the browser test reads to check that nodes stay put.
"""

from __future__ import annotations

from html import escape
from typing import Iterable

from core.cell.genotype import OPS, Edge, Genotype, edge_str
from core.insight.draw import (
    CANDIDATE,
    FADED,
    INPUT_COLOUR,
    OP_COLOURS,
    OUTPUT_COLOUR,
    REMOVED,
)
from core.insight.layout import LEGEND_H, NODE_H, NODE_W, DagLayout

PICK, PLAIN, EARLIER, LEAF_LINK = "#7b3294", "#525252", "#d0d0d0", "#969696"
FONT = "font-family='Helvetica, Arial, sans-serif'"


def dag_svg(
    g: Genotype,
    layout: DagLayout,
    *,
    candidates: Iterable[Edge] = (),
    removed: Edge | None = None,
    start: Genotype | None = None,
    show_earlier: bool = True,
    title: str = "",
    pick: Edge | None = None,
) -> str:
    """`g` is the DAG before the step's removal (as in draw.dag_graph); `pick` is a student's
    guess (purple). Nodes pruned by the removal fade in place; edges pruning drops go red dashed."""
    candidates = set(candidates)
    after = g.without_edge(removed) if removed is not None else g
    live, leaves, kept = after.reachable(), after.leaves(), set(after.edges)
    parts = [_defs()]
    if title:
        parts.append(f"<text x='12' y='22' font-size='17' font-weight='bold' {FONT}>{escape(title)}</text>")
    if start is not None and show_earlier:
        parts += [
            _edge(layout, e, EARLIER, 1.5, "earlier", dash="5 4", cls="earlier")
            for e in sorted(set(start.edges) - set(g.edges))
        ]
    parts += [_leaf_link(layout, leaf) for leaf in leaves]
    for e in sorted(g.edges, key=lambda e: (e == pick, e in candidates, e == removed)):  # emphasis on top
        parts.append(_styled_edge(layout, e, e == removed, e not in kept, e in candidates, e == pick))
    parts += [_node(layout, g, j, j in live, j in leaves) for j in range(g.n_nodes)]
    parts.append(_out_node(layout, g.kind))
    parts.append(_legend(layout, g.kind, bool(candidates) or removed is not None, pick is not None))
    return (
        f"<svg class='dag' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {layout.width:.0f} "
        f"{layout.height:.0f}' width='100%' role='img' aria-label='{escape(title or 'cell DAG')}'>"
        + "".join(parts)
        + "</svg>"
    )


def _defs() -> str:
    marks = {"plain": PLAIN, "cand": CANDIDATE, "removed": REMOVED, "pick": PICK, "earlier": EARLIER, "leaf": LEAF_LINK}
    return (
        "<defs>"
        + "".join(
            f"<marker id='arrow-{name}' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='11' markerHeight='11' "
            f"markerUnits='userSpaceOnUse' orient='auto-start-reverse'>"
            f"<path d='M0,0 L10,5 L0,10 z' fill='{colour}'/></marker>"
            for name, colour in marks.items()
        )
        + "</defs>"
    )


def _path(layout: DagLayout, a: str, b: str, span: int, above: bool) -> tuple[str, tuple[float, float]]:
    (x1, y), (x2, _) = layout.xy(a), layout.xy(b)
    side = -1 if above else 1
    if span <= 1:
        return f"M{x1 + NODE_W / 2:.1f},{y:.1f} L{x2 - NODE_W / 2:.1f},{y:.1f}", ((x1 + x2) / 2, y - 6)
    lift = layout.arc_height(span)
    y0 = y + side * NODE_H / 2
    # a cubic with both controls at the same height peaks at 3/4 of their lift
    c = y0 + side * lift * 4 / 3
    d = f"M{x1:.1f},{y0:.1f} C{x1:.1f},{c:.1f} {x2:.1f},{c:.1f} {x2:.1f},{y0:.1f}"
    return d, ((x1 + x2) / 2, y0 + side * lift)


def _edge(
    layout: DagLayout, e: Edge, colour: str, width: float, mark: str, dash: str = "", label: str = "", cls: str = ""
) -> str:
    i, j = e
    span = j - i
    d, (lx, ly) = _path(layout, f"n{i}", f"n{j}", span, above=span % 2 == 0)
    if span <= 1 and label:
        label, ly = edge_str(e), ly - 4  # between two neighbours there is room for the edge's name only
    style = f" stroke-dasharray='{dash}'" if dash else ""
    out = (
        f"<path class='edge {cls}' data-edge='{i}-{j}' d='{d}' fill='none' stroke='{colour}' "
        f"stroke-width='{width}'{style} marker-end='url(#arrow-{mark})'><title>{edge_str(e)}</title></path>"
    )
    if label:
        out += (
            f"<text x='{lx:.1f}' y='{ly + 4:.1f}' text-anchor='middle' font-size='13' font-weight='bold' "
            f"fill='{colour}' stroke='white' stroke-width='4' paint-order='stroke' {FONT}>{escape(label)}</text>"
        )
    return out


def _styled_edge(
    layout: DagLayout, e: Edge, is_removed: bool, is_pruned: bool, is_candidate: bool, is_pick: bool
) -> str:
    name = edge_str(e)
    if is_removed:
        return _edge(layout, e, REMOVED, 5, "removed", label=f"removed {name}", cls="removed")
    if is_pick:
        return _edge(layout, e, PICK, 4, "pick", label=f"your pick {name}", cls="pick")
    if is_pruned:
        return _edge(layout, e, REMOVED, 2, "removed", dash="7 4", cls="pruned")
    if is_candidate:
        return _edge(layout, e, CANDIDATE, 2.5, "cand", label=name, cls="candidate")
    return _edge(layout, e, PLAIN, 1.3, "plain")


def _leaf_link(layout: DagLayout, leaf: int) -> str:
    x1, x2 = layout.xy(leaf)[0], layout.xy("out")[0]
    span = round((x2 - x1) / layout.spacing)
    d, _ = _path(layout, f"n{leaf}", "out", span, above=span % 2 == 0)
    return (
        f"<path class='leaf-link' d='{d}' fill='none' stroke='{LEAF_LINK}' stroke-width='1.2' "
        f"stroke-dasharray='2 3' marker-end='url(#arrow-leaf)'/>"
    )


def _box(x: float, y: float, fill: str, stroke: str, dash: str = "", double: bool = False) -> str:
    style = f" stroke-dasharray='{dash}'" if dash else ""
    box = (
        f"<rect x='{-NODE_W / 2}' y='{-NODE_H / 2}' width='{NODE_W}' height='{NODE_H}' rx='7' "
        f"fill='{fill}' stroke='{stroke}' stroke-width='1.5'{style}/>"
    )
    if double:
        box += (
            f"<rect x='{-NODE_W / 2 + 3}' y='{-NODE_H / 2 + 3}' width='{NODE_W - 6}' height='{NODE_H - 6}' "
            f"rx='5' fill='none' stroke='{stroke}' stroke-width='1'/>"
        )
    return box


def _node(layout: DagLayout, g: Genotype, j: int, live: bool, leaf: bool) -> str:
    x, y = layout.xy(j)
    if j == 0:
        fill, op = INPUT_COLOUR, "input"
    else:
        fill, op = OP_COLOURS.get(g.ops[j], "white"), g.ops[j]
    state = "live" if live or j == 0 else "pruned"
    body = _box(
        0,
        0,
        fill if state == "live" else "white",
        "#404040" if state == "live" else FADED,
        dash="" if state == "live" else "4 3",
        double=leaf and state == "live",
    )
    colour = "#111" if state == "live" else FADED
    tip = f"node {j}: {op}" + ("" if state == "live" else " (pruned: no longer reachable from node 0)")
    fade = "" if state == "live" else " opacity='0.55'"
    return (
        f"<g class='node {state}' data-node='{j}' transform='translate({x:.1f},{y:.1f})'"
        f"{fade}><title>{escape(tip)}</title>{body}"
        f"<text y='-2' text-anchor='middle' font-size='16' font-weight='bold' fill='{colour}' {FONT}>{j}</text>"
        f"<text y='13' text-anchor='middle' font-size='10.5' fill='{colour}' {FONT}>{escape(op)}</text></g>"
    )


def _out_node(layout: DagLayout, kind: str) -> str:
    x, y = layout.xy("out")
    what = "concat(leaves) + input" if kind == "cnn" else "h_t = mean(leaves)"
    return (
        f"<g class='node out' data-node='out' transform='translate({x:.1f},{y:.1f})'><title>output: "
        f"{escape(what)}</title>{_box(0, 0, OUTPUT_COLOUR, '#404040')}"
        f"<text y='5' text-anchor='middle' font-size='13' font-weight='bold' {FONT}>out</text></g>"
    )


def _legend(layout: DagLayout, kind: str, emphasis: bool, with_pick: bool) -> str:
    y = layout.height - LEGEND_H + 12
    items = [(INPUT_COLOUR, "input"), *((OP_COLOURS[op], op) for op in OPS[kind]), (OUTPUT_COLOUR, "output")]
    x, out = 12.0, []
    for colour, name in items:
        out.append(
            f"<rect x='{x}' y='{y - 9}' width='18' height='18' rx='4' fill='{colour}' stroke='#404040'/>"
            f"<text x='{x + 24}' y='{y + 5}' font-size='13' {FONT}>{escape(name)}</text>"
        )
        x += 34 + 8 * len(name)
    lines = [("#404040", "double border: leaf")]
    if emphasis:
        lines = [
            (CANDIDATE, "blue: candidate"),
            (REMOVED, "red: removed (dashed: pruned with it)"),
            ("#9e9e9e", "grey dashed: removed earlier; faded node: pruned"),
            *lines,
        ]
    if with_pick:
        lines.insert(0, (PICK, "purple: your pick"))
    x, y = 12.0, y + 22  # edge styles on a second row
    for colour, text in lines:
        out.append(f"<text x='{x}' y='{y + 5}' font-size='13' fill='{colour}' {FONT}>{escape(text)}</text>")
        x += 16 + 7 * len(text)
    return "".join(out)
