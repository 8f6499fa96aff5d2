"""The UI-free parts of classroom mode: the fixed DAG layout and its SVG, predict-the-edge
scoring and tally, edge-based progress, number formats, and run housekeeping rules."""

from __future__ import annotations

import re

import pytest
from fake_runs import fake_run

from core.cell.genotype import Genotype
from core.insight.dag_svg import dag_svg
from core.insight.format import SCORE_FORMULA, fmt_pct, fmt_si
from core.insight.layout import dag_layout
from core.insight.predict import score_pick, tally
from core.insight.progress import edge_progress
from core.store.admin import delete_run, rename_run, reset_store
from core.store.runs import RunStatus, Store, StoreError

NODE_XY = re.compile(r"data-node='(\w+)' transform='translate\(([\d.]+),([\d.]+)\)'")


def _nodes(svg: str) -> dict[str, tuple[float, float]]:
    return {n: (float(x), float(y)) for n, x, y in NODE_XY.findall(svg)}


def test_nodes_stay_put_while_edges_go_and_pruned_nodes_fade_in_place() -> None:
    dense = Genotype.dense("cnn", 8, 0)
    layout = dag_layout(dense)
    before = dag_svg(dense, layout, title="dense")
    after = dense.without_edge((0, 1))  # node 1 loses its only input: pruned
    svg = dag_svg(dense, layout, candidates=[(0, 1), (2, 5)], removed=(0, 1), start=dense)
    assert _nodes(before) == _nodes(svg) == _nodes(dag_svg(after, layout, start=dense))
    assert len(_nodes(svg)) == 9  # 8 nodes and the output, none dropped
    assert re.search(r"class='node pruned' data-node='1'[^>]*opacity", svg)
    assert "data-edge='0-1'" in svg and "class='edge removed'" in svg and "class='edge pruned'" in svg


@pytest.mark.parametrize("n", [5, 8, 16])
def test_layout_keeps_label_sizes_and_fits_the_width(n) -> None:
    layout = dag_layout(Genotype.dense("cnn", n, 0))
    xs = sorted(x for x, _ in layout.positions.values())
    assert xs[0] > 0 and xs[-1] < layout.width and min(b - a for a, b in zip(xs, xs[1:])) >= 54  # no overlap
    svg = dag_svg(Genotype.dense("cnn", n, 0), layout)
    assert "font-size='16'" in svg and f"viewBox='0 0 {layout.width:.0f}" in svg


def _c(edge, score):
    return {"edge": list(edge), "score": score}


def test_pick_rank_gap_and_tally() -> None:
    cands = [_c((0, 1), 0.50), _c((1, 2), 0.70), _c((0, 2), 0.65), _c((2, 3), None)]
    hit = score_pick(1, (1, 2), (1, 2), cands)
    assert hit.hit and hit.rank == 1 and hit.of == 3 and hit.gap == 0.0
    miss = score_pick(2, (0, 1), (1, 2), cands)
    assert (miss.rank, miss.gap) == (3, pytest.approx(0.20)) and "ranked 3 of 3" in miss.sentence()
    failed = score_pick(3, (2, 3), (1, 2), cands)
    assert failed.gap is None and failed.rank == 4 and "failed to train" in failed.sentence()
    with pytest.raises(ValueError, match="not a candidate"):
        score_pick(1, (3, 4), (1, 2), cands)
    t = tally([hit, miss, failed])
    assert (t.picks, t.hits) == (3, 1) and t.mean_rank == pytest.approx(8 / 3)
    assert t.mean_gap == pytest.approx(0.10) and t.chance == pytest.approx(1.0)


def test_progress_counts_edges_not_steps(tmp_path) -> None:
    store = Store(tmp_path / "r.db")
    run_id = fake_run(store, nodes=5, steps=2, live=True)  # demo-sized: 10 edges, keep 0 -> target 1
    prog = edge_progress(store.get_run(run_id), store.steps(run_id))
    assert (prog.initial, prog.current, prog.target) == (10, 8, 1)
    assert prog.fraction == pytest.approx(2 / 9) and prog.to_go == 7
    assert "2 of 9 edges removed · 7 left to the target of 1 edges" == prog.text()


def test_numbers_one_format() -> None:
    assert [fmt_si(3_636_301), fmt_si(383_678_673), fmt_si(96_650), fmt_si(None)] == ["3.64M", "384M", "96.7k", "-"]
    assert fmt_pct(0.739) == "73.9%" and "log10(MACs)" in SCORE_FORMULA["cnn"]


def test_rename_delete_reset_rules(tmp_path) -> None:
    store = Store(tmp_path / "r.db")
    done, live = fake_run(store), fake_run(store, live=True)
    assert rename_run(store, done, "  week  3 ") == "week 3" and store.get_run(done).name == "week 3"
    with pytest.raises(StoreError, match="at most"):
        rename_run(store, done, "x" * 81)
    with pytest.raises(StoreError, match="stop it before deleting"):
        delete_run(store, live)
    with pytest.raises(StoreError, match="cannot reset while run"):
        reset_store(store)
    delete_run(store, done)
    assert [r.id for r in store.list_runs()] == [live] and not store.candidates(done)
    store.finish(live, RunStatus.STOPPED)
    assert reset_store(store) == 1 and store.list_runs() == []
