"""The official AutoShrink search rules shared by both tasks (docs/FIDELITY.md): candidates,
score, stop, pruning. Each test fails if our code drifts from the rule it names."""

from __future__ import annotations

import math

import pytest

from core.cell.genotype import Genotype
from core.search.config import preset_config
from core.search.loop import step_candidates
from core.search.tasks import cnn_score, rnn_score


def test_candidates_are_k_edges_sampled_without_replacement_seeded() -> None:
    """Rule: shuffle the edges, try k = 10 of them, each at most once (official fetch_queue +
    random_remove); seeded by (run seed, step) here."""
    dense = Genotype.dense("cnn", 8, 0)
    picks = step_candidates(dense, 10, seed=5, step=3)
    assert len(picks) == 10 == len(set(picks)) and set(picks) <= set(dense.edges)
    assert step_candidates(dense, 10, seed=5, step=3) == picks
    assert step_candidates(dense, 10, seed=5, step=4) != picks
    assert sorted(step_candidates(Genotype("cnn", dense.ops, ((0, 1), (1, 2), (0, 2))), 10, 0, 1)) == [
        (0, 1),
        (0, 2),
        (1, 2),
    ]  # fewer edges than k: all of them


def test_paper_presets_k_nodes_and_stop() -> None:
    """Rule: CNN N=8 (28 edges), k=10, shrink to the end; RNN N=6 (15 edges), k=10, stop at
    round(15 x 0.25) = 4 edges."""
    cnn, rnn = preset_config("cnn", "paper"), preset_config("rnn", "paper")
    assert (cnn.nodes, cnn.k, cnn.epochs, cnn.target_edges()) == (8, 10, 20, 0)
    assert (cnn.lr, cnn.batch_size, cnn.weight_decay, cnn.per_class_train, cnn.per_class_val) == (
        4e-3,
        128,
        1e-5,
        500,
        100,
    )
    assert (rnn.nodes, rnn.k, rnn.target_edges()) == (6, 10, 4)


def test_score_formulas() -> None:
    """Rule: CNN acc - 0.1 (log10 MACs - 6); RNN (200 - ppl) x 0.25 - (log10 FLOPs - 6)."""
    assert cnn_score(0.8, 1e7) == pytest.approx(0.7)
    assert rnn_score(100.0, 1e5) == pytest.approx(26.0)
    assert math.isclose(rnn_score(200.0, 12 * 100**2), -(math.log10(120_000) - 6))


def test_pruning_keeps_only_edges_out_of_reachable_nodes() -> None:
    """Rule: optimize_mask keeps the edges leaving nodes reachable from node 0."""
    g = Genotype("rnn", ("tanh",) * 5, ((0, 1), (2, 3), (1, 3), (3, 4), (2, 4)))
    assert g.pruned().edges == ((0, 1), (1, 3), (3, 4))


def test_readme_preset_table_matches_the_presets() -> None:
    """Each row of the README's preset table says what its preset really sets (the RNN demo's
    row once said 4 epochs while the preset trains 5)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| `(paper|demo)` \| (cnn|rnn) \| (.+) \|$", readme, flags=re.M)
    assert len(rows) == 4, rows
    for preset, task, text in rows:
        cfg = preset_config(task, preset)

        def said(pattern: str, default=None):
            found = re.search(pattern, text)
            return type(default)(found.group(1)) if found else default

        assert said(r"N=(\d+)", 0) == cfg.nodes and said(r"k=(\d+)", 0) == cfg.k, text
        assert said(r"(\d+) epochs", 0) == cfg.epochs, text
        keep = 0.0 if "shrink to the end" in text else said(r"keep (\d+)%", 0) / 100
        assert keep == cfg.keep_fraction, text
        assert said(r"(\d+) noise seeds", 1) == cfg.noise_seeds, text
        assert said(r"epochs of (\d+) batches", 0) == cfg.max_batches, text
        assert said(r"batch (\d+)", cfg.batch_size) == cfg.batch_size, text
