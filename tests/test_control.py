"""The random-removal control (core.search.control): the cells it draws, that they are trained
exactly as candidates, that it resumes without retraining, its CLI, its bundle and its sentence.

One tiny real CNN search (4 nodes, 1 epoch, single evaluator) is shared by the module.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from fault_kit import cli, error_line

from core.cell.genotype import Genotype
from core.insight.control import control_groups, control_sentence
from core.search.bundle import bundle_bytes, import_bundle, read_bundle
from core.search.candidates import init_seed
from core.search.config import SearchConfig, preset_config
from core.search.control import (
    ControlError,
    ControlObserver,
    count_seed,
    default_targets,
    random_cell,
    random_cells,
    run_control,
)
from core.search.loop import create_run, run_search
from core.search.tasks import make_task
from core.store.controls import control_cells, get_control
from core.store.runs import RunStatus, Store

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, int]:
    """A finished 4-node CNN search (6 edges, 3 steps) with its noise measured; no control yet."""
    path = tmp_path_factory.mktemp("control") / "runs.db"
    store = Store(path)
    small = dict(nodes=4, k=2, epochs=1, keep_fraction=0.0, max_steps=3, threads=1, noise_seeds=2, control=0)
    cfg = preset_config("cnn", "demo", evaluator="single", **small)
    run_id = create_run(store, cfg)
    assert run_search(store, run_id) == RunStatus.FINISHED
    return path, run_id


def _copy(searched, tmp_path: Path) -> tuple[Store, int]:
    """A private copy of the searched store, so a test's control does not leak into another's."""
    path, run_id = searched
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "runs.db"
    with sqlite3.connect(path) as con:  # the whole store, WAL included
        con.execute(f"VACUUM INTO '{target}'")
    con.close()
    return Store(target), run_id


# ----- drawing --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,nodes", [("cnn", 8), ("rnn", 6), ("cnn", 5)])
def test_random_cells_have_the_requested_count_and_the_same_seed_gives_the_same_cells(kind, nodes):
    dense = Genotype.dense(kind, nodes, 0)
    for target in range(1, dense.num_edges):
        cells = random_cells(dense, 7, target, 5)
        assert cells == random_cells(dense, 7, target, 5)  # reproducible
        for g in cells:
            assert g.num_edges <= target and g.ops == dense.ops  # overshoot only by pruning
            assert g.pruned() == g and g.num_edges > 0  # pruned as the search prunes
            assert set(g.edges) <= set(dense.edges)
    half = dense.num_edges // 2
    assert random_cells(dense, 7, half, 5) != random_cells(dense, 8, half, 5)  # the run's seed matters


def test_random_removal_is_uniform_over_admissible_edges():
    dense = Genotype.dense("cnn", 5, 0)
    first = [
        next(iter(set(dense.edges) - set(random_cell(dense, dense.num_edges - 1, s).edges)), None) for s in range(2000)
    ]
    counts = {e: first.count(e) for e in dense.edges}
    assert min(counts.values()) > 2000 / len(dense.edges) * 0.6, counts  # every edge is drawn, none favoured


def test_default_counts_are_best_final_and_halfway(searched):
    store = Store(searched[0])
    steps = store.steps(searched[1])
    best = max((s for s in steps if s.step >= 1), key=lambda s: (s.score, -s.edges))
    final = steps[-1].edges
    assert default_targets(steps) == sorted({best.edges, final, (best.edges + final) // 2}, reverse=True)


# ----- training exactly as candidates ------------------------------------------------------
def test_control_records_match_a_single_evaluator_retrain(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    assert run_control(store, run_id, samples=2, edges=[4, 2]) == RunStatus.FINISHED
    cells = control_cells(store, run_id)
    assert sorted((c.target, c.sample) for c in cells) == [(2, 0), (2, 1), (4, 0), (4, 1)]
    cfg = SearchConfig.from_dict(store.get_run(run_id).config)
    task = make_task(cfg, torch.device("cpu"), lambda m: None)
    dense = store.steps(run_id)[0].genotype
    for c in cells:
        assert c.genotype == random_cell(dense, c.target, _cell_seed(cfg.seed, c.target, c.sample))
        torch.set_num_threads(1)
        model = task.build(c.genotype, init_seed(count_seed(cfg.seed, c.target), c.sample))
        res = task.train(model, count_seed(cfg.seed, c.target), lambda: False, lambda row: None)
        cost = task.cost(c.genotype)
        assert (c.accuracy, c.macs, c.params, c.epochs) == (res.accuracy, cost.macs, cost.params, res.epochs)
        assert c.score == task.score(res, cost) and c.status == "ok"
    control = get_control(store, run_id)
    assert control.status == RunStatus.FINISHED and control.evaluator == "single" and control.wall_s > 0


def _cell_seed(seed, target, sample):
    from core.search.control import cell_seed

    return cell_seed(seed, target, sample)


def test_a_stopped_control_resumes_without_retraining_and_matches_an_uninterrupted_one(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    stop = threading.Event()

    class StopAfterFirst(ControlObserver):
        def on_cell(self, run_id, cell, done, total):
            stop.set()

    assert run_control(store, run_id, 2, [3], StopAfterFirst(), stop) == RunStatus.STOPPED
    kept = control_cells(store, run_id)
    assert len(kept) == 1 and get_control(store, run_id).status == RunStatus.STOPPED
    assert run_control(store, run_id, 2, [3]) == RunStatus.FINISHED
    after = control_cells(store, run_id)
    assert [c for c in after if (c.target, c.sample) == (kept[0].target, kept[0].sample)] == kept  # not retrained
    other, other_id = _copy(searched, tmp_path / "b")
    run_control(other, other_id, 2, [3])
    assert [(c.genotype, c.accuracy, c.score) for c in control_cells(other, other_id)] == [
        (c.genotype, c.accuracy, c.score) for c in after
    ]


def test_a_control_extends_with_more_counts_and_keeps_one_r(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    run_control(store, run_id, 1, [4])
    first = control_cells(store, run_id)
    run_control(store, run_id, 2, [2])
    control = get_control(store, run_id)
    assert control.targets == (4, 2) and control.samples == 2
    cells = control_cells(store, run_id)
    assert len(cells) == 4 and first[0] in cells


def test_bad_requests_are_one_line_and_write_nothing(searched, tmp_path, capsys):
    store, run_id = _copy(searched, tmp_path)
    for args, message in (
        (["--edges", "6"], "edge counts must be in 1..5"),
        (["--samples", "0"], "samples must be"),
        (["--edges", "x"], "--edges takes edge counts"),
        (["--edges", "0"], "1..5"),
    ):
        code, err = cli(capsys, "control", run_id, *args, "--store", store.path)
        assert code == 2 and message in error_line(err), err
    code, err = cli(capsys, "control", 99, "--store", store.path)
    assert code == 2 and "unknown run 99" in error_line(err)
    assert get_control(store, run_id) is None and control_cells(store, run_id) == []
    with pytest.raises(ControlError, match="no committed step"):
        empty = create_run(store, preset_config("cnn", "demo", nodes=3, threads=1))
        run_control(store, empty)


def test_cli_control_json_and_show_json(searched, tmp_path, capsys):
    store, run_id = _copy(searched, tmp_path)
    code = _main("control", run_id, "--samples", "1", "--edges", "3", "--json", "--store", store.path)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["control"]["status"] == RunStatus.FINISHED and len(out["control"]["cells"]) == 1
    assert out["control"]["summary"][0]["target"] == 3
    _main("show", run_id, "--json", "--store", store.path)
    shown = json.loads(capsys.readouterr().out)["control"]
    assert shown["cells"] == out["control"]["cells"] and shown["targets"] == [3]


def _main(*args) -> int:
    from core.cli.main import main

    return main([str(a) for a in args])


def test_kill_9_keeps_committed_cells_and_the_next_control_finishes(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "control",
            str(run_id),
            "--samples",
            "4",
            "--edges",
            "4,2",
            "--store",
            str(store.path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + TIMEOUT
    while len(control_cells(store, run_id)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(TIMEOUT)
    kept = control_cells(store, run_id)
    assert 2 <= len(kept) and get_control(store, run_id).status in (RunStatus.INTERRUPTED, RunStatus.FINISHED)
    if len(kept) == 8:
        pytest.skip("the control finished before the kill (machine too fast for this test)")
    assert get_control(store, run_id).status == RunStatus.INTERRUPTED
    code = _main("control", run_id, "--store", store.path)  # same plan, only the missing cells
    cells = control_cells(store, run_id)
    assert code == 0 and len(cells) == 8 and get_control(store, run_id).status == RunStatus.FINISHED
    assert all(k in cells for k in kept)


def test_ctrl_c_stops_the_control_cleanly(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "control", str(run_id), "--samples", "6", "--store", str(store.path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + TIMEOUT
    while not control_cells(store, run_id) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode in (0, 130) and b"Traceback" not in err, err
    assert get_control(store, run_id).status in (RunStatus.STOPPED, RunStatus.FINISHED)


# ----- bundles --------------------------------------------------------------------------------
def test_bundle_round_trip_carries_the_control_and_refuses_a_tampered_one(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    run_control(store, run_id, 2, [3])
    data = bundle_bytes(store, run_id, compress=False)
    target = Store(tmp_path / "other.db")
    new_id = import_bundle(target, data, "b.json")
    strip = lambda cells: [(c.target, c.sample, c.genotype, c.accuracy, c.score, c.history) for c in cells]  # noqa: E731
    assert strip(control_cells(target, new_id)) == strip(control_cells(store, run_id))
    assert get_control(target, new_id).targets == (3,) and get_control(target, new_id).status == RunStatus.FINISHED
    doc = json.loads(data)
    for name, change in (
        ("score", lambda d: d["control"]["cells"][0].update(score=9.0)),
        ("cell", lambda d: d["control"]["cells"][0]["genotype"]["edges"].pop(0)),
        ("plan", lambda d: d["control"]["cells"][0].update(sample=7)),
    ):
        bad = json.loads(data)
        change(bad)
        before = len(target.list_runs())
        with pytest.raises(Exception) as info:
            import_bundle(target, json.dumps(bad).encode(), f"{name}.json")
        assert "control" in str(info.value) and "\n" not in str(info.value), (name, info.value)
        assert len(target.list_runs()) == before
    v1 = {k: v for k, v in doc.items() if k != "control"}
    v1["version"] = 1
    assert read_bundle(json.dumps(v1).encode()).control is None
    assert get_control(target, import_bundle(target, json.dumps(v1).encode(), "v1.json")) is None


# ----- words ----------------------------------------------------------------------------------
def test_sentence_counts_wins_and_wins_beyond_the_noise(searched, tmp_path):
    store, run_id = _copy(searched, tmp_path)
    run_control(store, run_id, 3, [store.steps(run_id)[-1].edges])
    run = store.get_run(run_id)
    group = control_groups(store.steps(run_id), control_cells(store, run_id), "cnn", run.noise)[0]
    scores = [c.score for c in control_cells(store, run_id)]
    chosen = store.steps(run_id)[-1].score
    assert group["beats"] == sum(chosen > s for s in scores)
    assert group["beats_beyond_noise"] == sum(chosen - s > run.noise["std"] for s in scores)
    text = control_sentence(group)
    assert text.startswith(f"The chosen {group['target']}-edge cell scores {chosen:.3f}; 3 random")
    assert f"it beats {group['beats']} of 3, {group['beats_beyond_noise']} of them by more than the noise." in text


# ----- roles and housekeeping ---------------------------------------------------------------
def test_view_mode_refuses_a_control_and_writes_nothing(searched, tmp_path, monkeypatch):
    from core.runner.threads import Runner
    from core.store.access import MODE_ENV, ReadOnlyError

    store, run_id = _copy(searched, tmp_path)
    monkeypatch.setenv(MODE_ENV, "view")
    for call in (
        lambda: Runner().start_control(store, run_id, 2),
        lambda: run_control(store, run_id, 2),
        lambda: Runner().stop(store, run_id, kind="control"),
    ):
        with pytest.raises(ReadOnlyError, match="view-only mode"):
            call()
    assert get_control(store, run_id) is None


def test_deleting_a_run_removes_its_control_and_a_live_control_blocks_it(searched, tmp_path):
    from core.store.admin import delete_run, reset_store
    from core.store.controls import claim_control
    from core.store.runs import StoreError

    store, run_id = _copy(searched, tmp_path)
    claim_control(store, run_id, 2, [3], "cpu")  # this process: the control reads running
    with pytest.raises(StoreError, match="control of run"):
        delete_run(store, run_id)
    with pytest.raises(StoreError, match="control of run"):
        reset_store(store)
    with pytest.raises(StoreError, match="already running"):  # a second claim while it runs
        run_control(store, run_id, 1, [3])
    from core.store.controls import finish_control

    finish_control(store, run_id, RunStatus.STOPPED, "", 0.0)
    run_control(store, run_id, 1, [3])
    assert control_cells(store, run_id)
    delete_run(store, run_id)
    assert get_control(store, run_id) is None and control_cells(store, run_id) == []


def test_a_control_ends_its_pool_worker_processes(tmp_path: Path) -> None:
    """Before: the control started a pool and never closed it, so a long-lived app server kept
    two worker processes (and their copy of the data) for every control it had run."""
    import multiprocessing

    from core.search.evaluators.pool import _POOLS

    store = Store(tmp_path / "r.db")
    small = dict(nodes=4, k=2, epochs=1, keep_fraction=0.0, max_steps=1, threads=1, noise_seeds=1, control=0)
    run_id = create_run(store, preset_config("cnn", "demo", evaluator="pool", max_batches=2, **small))
    assert run_search(store, run_id) == RunStatus.FINISHED
    assert run_control(store, run_id, 2, [5]) == RunStatus.FINISHED
    assert get_control(store, run_id).evaluator == "pool"
    assert not _POOLS and not multiprocessing.active_children()
