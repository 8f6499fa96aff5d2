"""Compare's core: one kind per cost table, edges only one genotype has, costs, LM sizes."""

from __future__ import annotations

import pytest

from core.cell.genotype import Genotype
from core.cell.presets import load_preset
from core.insight.compare import (
    IMAGENET_NET,
    PROXY_NET,
    CompareError,
    CompareItem,
    common_kind,
    cost_columns,
    cost_rows,
    only_in,
    rnn_lm_size,
)
from core.nets.rnn import rnn_cost
from core.store.runs import StepRecord


def test_mixed_kinds_are_refused_with_the_labels() -> None:
    items = [CompareItem("A", load_preset("shrinkcnn-a")), CompareItem("R", load_preset("shrinkrnn"))]
    with pytest.raises(CompareError, match=r"CNN cells \(A\) with RNN cells \(R\)"):
        common_kind(items)
    with pytest.raises(CompareError):
        cost_rows(items)


def test_only_in_lists_edges_no_other_genotype_has() -> None:
    a = load_preset("shrinkcnn-a")
    b = Genotype("cnn", a.ops, ((0, 1), (0, 2), (1, 2), (2, 4), (0, 3)))
    assert only_in([CompareItem("a", a), CompareItem("b", b)]) == [((0, 4), (1, 3)), ((1, 2),)]


def test_cnn_costs_reproduce_the_published_shrinkcnn() -> None:
    (row,) = cost_rows([CompareItem("A", load_preset("shrinkcnn-a"), quality=0.9)])
    params, macs = cost_columns(IMAGENET_NET)
    assert abs(row[params] - 3.64e6) < 0.01e6 and abs(row[macs] - 383.7e6) < 0.1e6
    assert row["proxy accuracy %"] == 90.0 and row[cost_columns(PROXY_NET)[1]] > 0
    (quick,) = cost_rows([CompareItem("A", load_preset("shrinkcnn-a"))], imagenet=False)
    assert params not in quick and cost_columns(PROXY_NET)[0] in quick  # the quick table: proxy net only


def test_rnn_costs_and_lm_size_recovered_from_a_run() -> None:
    (row,) = cost_rows([CompareItem("R", load_preset("shrinkrnn"), emb=745, hidden=745, vocab=10000)])
    assert row["LM params"] == 23_000_700 and row["cell FLOPs"] == 12 * 745 * 745
    g = Genotype.dense("rnn", 5, seed=0)
    params = rnn_cost(g, 32, 32, 1858).params
    step = StepRecord(step=0, edges=g.num_edges, removed=None, genotype=g, score=0.0, params=params)
    assert rnn_lm_size({"emb": 32, "hidden": 32, "max_vocab": 2000}, [step]) == (32, 32, 1858)
    assert rnn_lm_size({"emb": 32, "hidden": 32, "max_vocab": 0}, []) == (32, 32, 10000)


def test_the_vocabulary_fallback_rule() -> None:
    """core.insight.compare.lm_vocab: recorded size, else recovered from params, else max_vocab, else PTB's."""
    from core.insight.compare import lm_vocab

    g = Genotype.dense("rnn", 5, seed=0)
    step = StepRecord(
        step=0, edges=g.num_edges, removed=None, genotype=g, score=0.0, params=rnn_cost(g, 32, 32, 1858).params
    )
    config = {"emb": 32, "hidden": 32, "max_vocab": 2000}
    assert lm_vocab(config, [step], recorded=1234) == 1234
    assert lm_vocab(config, [step]) == 1858
    assert lm_vocab(config) == 2000 and lm_vocab({"max_vocab": 0}) == 10_000
