"""Measured noise: stored with the run at step 0, and every ranking marks gaps within it."""

from __future__ import annotations

import json
import math

from helpers import tiny_config

from core.cli.main import main
from core.insight.explain import candidate_rows, why_removed
from core.insight.noise import WITHIN, step_verdict
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store

NOISE = {"metric": "accuracy", "std": 0.01, "seeds": 3}


def _c(edge, score, acc, macs, status="ok") -> dict:
    return {
        "edge": edge,
        "score": score,
        "accuracy": acc,
        "macs": macs,
        "perplexity": None,
        "flops": None,
        "params": 10,
        "epochs": 1,
        "stop_reason": "max_epochs",
        "wall_s": 1.0,
        "status": status,
        "error": "",
        "edges_left": 5,
    }


def test_search_stores_noise_from_seeded_baselines(tmp_path, capsys) -> None:
    store = Store(tmp_path / "runs.db")
    cfg = tiny_config(keep_fraction=0.0, noise_seeds=3)
    run_id = create_run(store, cfg)
    assert run_search(store, run_id) == RunStatus.FINISHED
    base = store.candidates(run_id, 0)
    assert [c.idx for c in base] == [0, 1, 2] and all(c.edge is None for c in base)
    step0 = store.steps(run_id)[0]
    assert step0.accuracy == base[0].accuracy  # the first seed is the baseline snapshot
    noise = store.get_run(run_id).noise
    values = [c.accuracy for c in base]
    mean = sum(values) / 3
    assert noise["metric"] == "accuracy" and noise["seeds"] == 3
    assert math.isclose(noise["std"], math.sqrt(sum((v - mean) ** 2 for v in values) / 2))
    assert main(["show", str(run_id), "--store", str(store.path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["run"]["noise"]
    assert {k: shown[k] for k in ("metric", "std", "seeds")} == {k: noise[k] for k in ("metric", "std", "seeds")}


def test_one_seed_means_noise_not_measured(tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    cfg = tiny_config(k=1, max_steps=0, keep_fraction=0.0, noise_seeds=1)
    run_id = create_run(store, cfg)
    store.set_noise(run_id, {})
    assert run_search(store, run_id) == RunStatus.FINISHED
    assert store.get_run(run_id).noise["std"] is None and len(store.candidates(run_id, 0)) == 1


def test_table_marks_gaps_smaller_than_the_noise() -> None:
    cands = [_c([0, 1], 1.00, 0.900, 200_000), _c([1, 2], 1.02, 0.905, 150_000), _c([2, 3], 0.9, 0.85, 100_000)]
    rows = candidate_rows(cands, (1, 2), "cnn", NOISE)
    assert [r["vs chosen"] for r in rows] == [WITHIN, "", ""]
    assert "vs chosen" not in candidate_rows(cands, (1, 2), "cnn")  # no noise measured: no column
    live = candidate_rows(cands, None, "cnn", NOISE)  # a step in progress: against the best so far
    assert [r["vs chosen"] for r in live] == [WITHIN, "", ""]


def test_sentence_says_when_cost_decided_and_when_gap_is_noise() -> None:
    cheaper = [_c([0, 1], 1.00, 0.905, 200_000), _c([1, 2], 1.02, 0.900, 100_000)]
    text = why_removed((1, 2), cheaper, "cnn", noise=NOISE)
    assert "The cost term, not quality, decided this step" in text and "within the measured noise" in text
    assert "accuracy std 1.00 points over 3 seeds" in text
    assert step_verdict((1, 2), cheaper, "cnn", NOISE) == "cost (quality within noise)"
    worse = [_c([0, 1], 1.00, 0.95, 200_000), _c([1, 2], 1.02, 0.90, 100_000)]
    assert "The cost term, not quality, decided" in why_removed((1, 2), worse, "cnn")  # no noise needed
    better = [_c([0, 1], 1.00, 0.90, 100_000), _c([1, 2], 1.02, 0.95, 200_000)]
    assert "noise" not in why_removed((1, 2), better, "cnn", noise=NOISE).split(".", 1)[1]
    assert step_verdict((1, 2), better, "cnn", NOISE) == "quality"
    same_cost = [_c([0, 1], 1.00, 0.900, 100_000), _c([1, 2], 1.005, 0.905, 100_000)]
    assert "could go either way" in why_removed((1, 2), same_cost, "cnn", noise=NOISE)
    assert step_verdict((1, 2), same_cost, "cnn", NOISE) == WITHIN
    assert "3 seeds to measure the noise" in why_removed(None, cheaper, "cnn", noise=NOISE)
