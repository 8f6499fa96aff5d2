"""The Explorer's words: the candidate table rows and the one sentence on why an edge went."""

from __future__ import annotations

from core.insight.explain import BASELINE_MARK, CHOSEN_MARK, candidate_rows, si, why_removed


def _c(edge, score, acc=None, macs=None, ppl=None, flops=None, edges_left=8, status="ok") -> dict:
    return {
        "edge": edge,
        "score": score,
        "accuracy": acc,
        "macs": macs,
        "perplexity": ppl,
        "flops": flops,
        "params": 1000,
        "epochs": 3,
        "stop_reason": "max_epochs",
        "wall_s": 1.234,
        "status": status,
        "error": "",
        "edges_left": edges_left,
    }


def test_rows_mark_only_the_removed_edge_and_name_units() -> None:
    rows = candidate_rows([_c([0, 1], 0.9, 0.91, 1000), _c([1, 2], 0.95, 0.93, 900)], (1, 2), "cnn")
    assert [r["chosen"] for r in rows] == ["", CHOSEN_MARK]
    assert rows[1]["edge"] == "1-2" and rows[1]["accuracy %"] == 93.0 and rows[1]["MACs"] == 900
    assert rows[0]["time s"] == 1.2
    base = candidate_rows([_c(None, 0.5, 0.5, 1000)], None, "cnn")
    assert base[0]["chosen"] == BASELINE_MARK and base[0]["edge"] == "dense"
    rnn = candidate_rows([_c([0, 1], 1.0, ppl=123.456, flops=500)], (0, 1), "rnn")
    assert rnn[0]["perplexity"] == 123.46 and rnn[0]["FLOPs"] == 500 and "accuracy %" not in rnn[0]


def test_sentence_names_runner_up_accuracy_and_macs() -> None:
    cands = [_c([0, 1], 1.00, 0.90, 200_000), _c([2, 3], 1.05, 0.88, 100_000), _c([1, 3], 0.70, 0.60, 90_000)]
    text = why_removed((2, 3), cands, "cnn")
    assert text.startswith("Removing 2-3 scored best (1.0500), 0.0500 ahead of 0-1")
    assert "2.0 points less accuracy (88.0% vs 90.0%)" in text
    assert "100k fewer MACs (100k vs 200k, 50%)" in text


def test_sentence_for_rnn_pruning_baseline_and_single_candidate() -> None:
    cands = [_c([0, 1], 2.0, ppl=140.0, flops=5000, edges_left=5), _c([2, 3], 1.0, ppl=150.0, flops=9000)]
    text = why_removed((0, 1), cands, "rnn", edges_before=9)
    assert "10.00 lower perplexity (140.00 vs 150.00)" in text and "4k fewer FLOPs" in text
    assert "pruning took 3 more edges with it" in text
    assert "no edge was removed" in why_removed(None, [_c(None, 1.0, 0.5, 10)], "cnn")
    assert "only candidate" in why_removed((0, 1), [_c([0, 1], 1.0, 0.5, 10)], "cnn")


def test_si() -> None:
    assert (si(170442), si(3_636_301), si(383_678_673), si(12), si(None)) == ("170k", "3.64M", "384M", "12", "-")
