"""Where each node of a run's DAG sits: computed once from the dense DAG, then kept.

Stepping through a search only removes edges, so drawing every step with the positions of
the dense start keeps nodes still and lets the eye follow what changed (Graphviz lays each
step out again and nodes jump). Nodes go on one line in topological order (the dense DAG's
longest-path depth, which is the node index) and edges become arcs, so the drawing has the
same proportions at N=5 and N=16: only the spacing shrinks, labels keep their size.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.cell.genotype import Genotype

WIDTH = 1100.0  # viewBox width: the drawing is scaled to the page width
MARGIN = 40.0
NODE_W, NODE_H = 54.0, 40.0
ARC = 0.21  # arc height per unit of span, in node spacings
TITLE_H, LEGEND_H = 30.0, 56.0


@dataclass(frozen=True)
class DagLayout:
    """Positions (node centre, viewBox units) of node 0..N-1 and of the output ("out")."""

    kind: str
    n_nodes: int
    positions: dict[str, tuple[float, float]]
    spacing: float
    width: float
    height: float

    def xy(self, node: int | str) -> tuple[float, float]:
        return self.positions[node if isinstance(node, str) else f"n{node}"]

    def arc_height(self, span: int) -> float:
        return ARC * span * self.spacing


def _depths(dense: Genotype) -> dict[int, int]:
    """Longest-path depth from node 0 (edges always go forward, so one pass in index order)."""
    depth = {0: 0}
    for j in range(1, dense.n_nodes):
        depth[j] = 1 + max((depth[i] for i, jj in dense.edges if jj == j), default=-1)
    return depth


def dag_layout(dense: Genotype) -> DagLayout:
    """Layout of a run's dense start; every later snapshot of the run is drawn on it."""
    n = dense.n_nodes
    depth = _depths(dense)
    order = sorted(range(n), key=lambda j: (depth[j], j))
    slots = n + 1  # the output sits one slot after the last node
    spacing = (WIDTH - 2 * MARGIN - NODE_W) / max(slots - 1, 1)
    arc = ARC * n * spacing
    baseline = TITLE_H + arc + NODE_H
    positions = {f"n{j}": (MARGIN + NODE_W / 2 + slot * spacing, baseline) for slot, j in enumerate(order)}
    positions["out"] = (MARGIN + NODE_W / 2 + n * spacing, baseline)
    height = baseline + NODE_H + arc + LEGEND_H
    return DagLayout(dense.kind, n, positions, spacing, WIDTH, height)
