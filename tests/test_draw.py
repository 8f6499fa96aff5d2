"""The DAG drawing: what each node and edge style means, and the DOT/SVG exports."""

from __future__ import annotations

import re

import pytest

from core.cell.genotype import Genotype
from core.cell.presets import load_preset
from core.insight.draw import (
    CANDIDATE,
    EARLIER,
    FADED,
    OP_COLOURS,
    REMOVED,
    DrawError,
    dag_graph,
    dot_source,
    svg_bytes,
    svg_problem,
)


def _edge_attrs(dot: str, i: int | str, j: int | str) -> list[str]:
    """The attribute strings of every drawn edge i -> j (node names n<i>, or 'out')."""
    a = f"n{i}" if isinstance(i, int) else i
    b = f"n{j}" if isinstance(j, int) else j
    return re.findall(rf"^\s*{a} -> {b}(?: \[(.*)\])?$", dot, flags=re.M)


def _node_attrs(dot: str, name: str) -> str:
    (attrs,) = re.findall(rf"^\t{name} \[(.*?)\]\n", dot, flags=re.M | re.S)  # labels may span lines
    return attrs


def test_plain_cnn_cell_marks_input_ops_leaves_and_output() -> None:
    g = load_preset("shrinkcnn-a")
    dot = dot_source(dag_graph(g))
    assert 'label="0: input"' in _node_attrs(dot, "n0")
    for j in range(1, g.n_nodes):
        assert OP_COLOURS[g.ops[j]] in _node_attrs(dot, f"n{j}")  # coloured by op
    for leaf in g.leaves():  # n3, n4: double border, feed the output
        assert "peripheries=2" in _node_attrs(dot, f"n{leaf}")
        assert _edge_attrs(dot, leaf, "out")
    assert "peripheries=1" in _node_attrs(dot, "n1")
    assert "concat(leaves) + input" in _node_attrs(dot, "out")
    for i, j in g.edges:
        (attrs,) = _edge_attrs(dot, i, j)
        assert REMOVED not in attrs and CANDIDATE not in attrs
    for op in ("sep3x3", "conv1x1"):  # the legend names every op
        assert f"> {op} </td>" in dot


def test_rnn_cell_has_xt_input_and_mean_output() -> None:
    g = load_preset("shrinkrnn")
    dot = dot_source(dag_graph(g))
    assert "x_t, h_{t-1}" in _node_attrs(dot, "n0")
    assert "mean(leaves)" in _node_attrs(dot, "out") and "h_t" in _node_attrs(dot, "out")
    assert not _edge_attrs(dot, 0, "out")  # no residual add in the RNN cell
    for op in ("tanh", "relu", "sigmoid", "identity"):
        assert f"> {op} </td>" in dot


def test_step_view_highlights_candidates_removed_pruned_and_earlier() -> None:
    start = Genotype.dense("cnn", 5, seed=0)
    parent = start.without_edge((0, 2))  # removed at an earlier step
    # Removing 0-1 leaves node 1 unreachable: its out-edges go with it (pruned).
    dot = dot_source(dag_graph(parent, candidates=[(0, 1), (3, 4), (1, 2)], removed=(0, 1), start=start))
    (removed,) = _edge_attrs(dot, 0, 1)
    assert REMOVED in removed and "label=removed" in removed and "dashed" not in removed
    for j in (2, 3, 4):  # 1 -> j dropped by pruning with it
        (attrs,) = _edge_attrs(dot, 1, j)
        assert REMOVED in attrs and "dashed" in attrs
    (cand,) = _edge_attrs(dot, 3, 4)
    assert CANDIDATE in cand
    (plain,) = _edge_attrs(dot, 0, 3)
    assert CANDIDATE not in plain and REMOVED not in plain
    (earlier,) = _edge_attrs(dot, 0, 2)
    assert EARLIER in earlier
    assert "(pruned)" in _node_attrs(dot, "n1") and FADED in _node_attrs(dot, "n1")
    hidden = dot_source(dag_graph(parent, removed=(0, 1), start=start, show_earlier=False))
    assert not _edge_attrs(hidden, 0, 2)


def test_nodes_unreachable_before_the_step_are_faded() -> None:
    g = Genotype("cnn", ("input", "sep3x3", "conv1x1", "sep3x3"), ((0, 1), (2, 3)))
    dot = dot_source(dag_graph(g))
    assert FADED in _node_attrs(dot, "n2") and FADED in _node_attrs(dot, "n3")
    assert FADED not in _node_attrs(dot, "n1")


def test_svg_export_or_a_clear_message(monkeypatch) -> None:
    dot = dag_graph(load_preset("shrinkcnn-a"), title="the published cell")
    if svg_problem():
        pytest.skip("graphviz `dot` is not installed here")
    svg = svg_bytes(dot)
    assert b"<svg" in svg and b"the published cell" in svg
    monkeypatch.setenv("PATH", "")
    assert "dot" in svg_problem()
    with pytest.raises(DrawError, match="needs Graphviz's `dot` program"):
        svg_bytes(dot)
