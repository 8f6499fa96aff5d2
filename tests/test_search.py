"""The AutoShrink loop end to end on the embedded digits data."""

import math
import shutil
import threading
from dataclasses import replace

import pytest
import torch

from core.cell.genotype import Genotype
from core.data.images import CIFAR_TEST_FILE, CIFAR_TRAIN_FILES
from core.errors import UserError
from core.search.candidates import StepJob
from core.search.config import SearchConfig, preset_config
from core.search.evaluators import evaluate
from core.search.loop import Observer, QueueObserver, choose, create_run, run_search, step_candidates
from core.search.tasks import CNNProxyTask, cnn_score, make_task, rnn_score
from core.seeds import derive_seed
from core.store.runs import RunStatus, Store, best_of

TINY = dict(nodes=4, k=2, epochs=1, keep_fraction=0.0, threads=1)
NOP = lambda *a: None  # noqa: E731


def formula(task: str, c) -> float:
    """The paper's scores, written out independently of core.search.tasks (cnn_score, rnn_score)."""
    if task == "cnn":
        return c.accuracy - 0.1 * (math.log10(c.macs) - 6)
    return (200 - c.perplexity) * 0.25 - (math.log10(c.flops) - 6)


@pytest.fixture(scope="module", params=["cnn", "rnn"])
def demo_run(request, tmp_path_factory):
    """One whole `demo` search per task, shared by the checks below."""
    store = Store(tmp_path_factory.mktemp("demo") / "runs.db")
    run_id = create_run(store, preset_config(request.param, "demo", threads=1))
    events = QueueObserver()
    assert run_search(store, run_id, events) == RunStatus.FINISHED
    return store, run_id, events, request.param


def test_demo_search_shrinks_to_the_stop_rule(demo_run):
    store, run_id, _, task = demo_run
    cfg = preset_config(task, "demo")
    steps = store.steps(run_id)
    assert [s.step for s in steps] == list(range(len(steps))) and len(steps) >= 3
    assert steps[0].edges == cfg.nodes * (cfg.nodes - 1) // 2 and steps[0].removed is None
    edges = [s.edges for s in steps]
    assert all(a > b for a, b in zip(edges, edges[1:])), edges
    last = steps[-1].genotype
    assert last.num_edges <= cfg.target_edges() or not step_candidates(last, cfg.k, cfg.seed, len(steps))
    assert steps[-2].edges > cfg.target_edges()
    assert store.get_run(run_id).evaluator == ("batched" if task == "cnn" else "single")  # auto on CPU


def test_each_removed_edge_is_the_best_scoring_candidate(demo_run):
    store, run_id, _, task = demo_run
    steps = store.steps(run_id)
    for s in steps[1:]:
        cands = store.candidates(run_id, s.step)
        assert len(cands) == min(preset_config(task, "demo").k, steps[s.step - 1].edges)
        best = max((c for c in cands if c.score is not None), key=lambda c: c.score)
        assert s.removed == best.edge and s.score == best.score
        assert s.genotype == best.genotype
        assert s.genotype.edges == steps[s.step - 1].genotype.without_edge(s.removed).edges


def test_stored_scores_follow_the_paper_formula(demo_run):
    store, run_id, _, task = demo_run
    for c in store.candidates(run_id):
        assert c.status == "ok" and c.params > 0 and c.epochs >= 1 and c.stop_reason and c.wall_s > 0
        if task == "cnn":
            assert 0 <= c.accuracy <= 1 and c.macs > 0 and c.perplexity is None
        else:
            hidden = preset_config("rnn", "demo").hidden
            assert c.perplexity > 1 and c.flops == c.genotype.num_edges * hidden**2 and c.accuracy is None
        assert c.score == pytest.approx(formula(task, c), abs=1e-12)
    assert cnn_score(0.9, 1e6) == pytest.approx(0.9)
    assert rnn_score(100.0, 1e6) == pytest.approx(25.0)


def test_observer_saw_every_committed_step(demo_run):
    store, run_id, events, _ = demo_run
    seen = []
    while not events.events.empty():
        seen.append(events.events.get())
    steps = [e[2].step for e in seen if e[0] == "step"]
    assert steps == [s.step for s in store.steps(run_id)]
    assert seen[-1][0] == "end" and seen[-1][2][0] == RunStatus.FINISHED
    assert sum(e[0] == "candidate" for e in seen) == len(store.candidates(run_id))


def test_same_seed_same_search(store_path):
    store = Store(store_path)
    cfg = preset_config("cnn", "demo", **TINY, max_steps=3)
    a, b = create_run(store, cfg), create_run(store, cfg)
    run_search(store, a), run_search(store, b)
    assert [(s.removed, s.score) for s in store.steps(a)] == [(s.removed, s.score) for s in store.steps(b)]


def test_stop_then_resume_finishes_with_contiguous_steps(store_path):
    store = Store(store_path)
    run_id = create_run(store, preset_config("cnn", "demo", **TINY, max_steps=3))
    stop = threading.Event()

    class StopAfterStep1(Observer):
        def on_step(self, run_id, step, candidates):
            if step.step == 1:
                stop.set()

    assert run_search(store, run_id, StopAfterStep1(), stop) == RunStatus.STOPPED
    assert store.get_run(run_id).status == RunStatus.STOPPED
    assert [s.step for s in store.steps(run_id)] == [0, 1]
    assert run_search(store, run_id) == RunStatus.FINISHED
    assert [s.step for s in store.steps(run_id)] == [0, 1, 2, 3]  # contiguous, none repeated


def test_a_failed_candidate_is_recorded_and_the_search_goes_on(store_path, monkeypatch):
    real_build = CNNProxyTask.build

    def build(self, genotype, seed):
        if (0, 1) not in genotype.edges:
            raise RuntimeError("planted build failure")
        return real_build(self, genotype, seed)

    monkeypatch.setattr(CNNProxyTask, "build", build)
    store = Store(store_path)
    run_id = create_run(store, preset_config("cnn", "demo", **{**TINY, "k": 6, "max_steps": 1}))
    assert run_search(store, run_id) == RunStatus.FINISHED
    failed = [c for c in store.candidates(run_id, 1) if c.status == RunStatus.FAILED]
    assert len(failed) == 1 and failed[0].edge == (0, 1) and "planted build failure" in failed[0].error
    assert failed[0].score is None and store.steps(run_id)[1].removed != (0, 1)


def test_missing_data_is_refused_before_a_run_exists(store_path, tmp_path):
    store = Store(store_path)
    with pytest.raises(UserError, match="nope"):
        create_run(store, preset_config("cnn", "demo", data=f"cifar10:{tmp_path / 'nope'}"))
    assert store.list_runs() == []


def test_data_gone_after_the_start_fails_the_run_with_one_line(store_path, tmp_path):
    store, folder = Store(store_path), tmp_path / "gone"
    folder.mkdir()
    for name in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE):
        (folder / name).write_bytes(b"")
    run_id = create_run(store, preset_config("cnn", "demo", data=f"cifar10:{folder}"))
    shutil.rmtree(folder)
    assert run_search(store, run_id) == RunStatus.FAILED
    error = store.get_run(run_id).error
    assert "gone" in error and "\n" not in error


def test_choose_breaks_ties_by_fewer_edges():
    from core.store.runs import CandidateRecord

    g = Genotype.dense("cnn", 4, 0)
    small, big = g.without_edge((0, 1)), g.without_edge((2, 3))
    recs = [
        CandidateRecord(1, 0, (2, 3), big, "ok", score=0.5),
        CandidateRecord(1, 1, (0, 1), small, "ok", score=0.5),
        CandidateRecord(1, 2, (1, 2), big, "failed", score=None),
    ]
    assert choose(recs).idx == (1 if small.num_edges < big.num_edges else 0)


def test_demo_figures_teach(demo_run):
    """The demos a class sees: a measured noise, real differences, a real cell (loose bounds)."""
    store, run_id, _, task = demo_run
    run, steps = store.get_run(run_id), store.steps(run_id)
    std = run.noise["std"]
    assert run.noise["seeds"] == 3 and std is not None and std >= 0
    metric = "perplexity" if task == "rnn" else "accuracy"
    spreads = []
    for s in steps[1:]:
        values = [getattr(c, metric) for c in store.candidates(run_id, s.step) if c.status == "ok"]
        spreads.append(max(values) - min(values))
    best = best_of(steps)
    if task == "rnn":
        # candidates learn: most well below the unigram level of the 500-word vocabulary (~107);
        # a cell pruned too far may not
        ppl = sorted(c.perplexity for c in store.candidates(run_id) if c.status == "ok")
        assert ppl[len(ppl) // 2] < 0.95 * 107 and ppl[0] < 0.85 * 107, ppl
        wide = sum(spread > 2 * std for spread in spreads)
        assert 2 * wide >= len(spreads), (spreads, std)  # half the steps or more: over twice the noise
    else:
        assert best.edges >= 3, best.genotype.edges  # a real cell, not a trivial one
        acc = [c.accuracy for c in store.candidates(run_id) if c.status == "ok"]
        assert max(acc) < 0.99, acc  # not saturated: quality still tells cells apart


BF16_PAIRS = 8  # seeds trained in both precisions: the mean shift's standard error is std/2 (0.82 std with 3)


def test_bf16_records_are_within_the_step0_noise(demo_run):
    """The demo's step 0 trains the dense cell under 3 noise seeds; those seeds and 5 more,
    trained in bf16 and in fp32, shift the records on average by less than the noise std the
    search measured there, so bf16 does not change what a search sees. One pair alone is not the
    measure: bf16 rounding sends training down another path, as a new seed does, so a pair
    differs by about sqrt(2) x the std, and the mean of n pairs by sqrt(2/n) x the std: with
    the search's 3 seeds alone a shift-free precision would fail this about one time in five.
    Where `auto` resolves to fp32 the bf16 side is trained here too."""
    store, run_id, _, task = demo_run
    run, baselines = store.get_run(run_id), store.candidates(run_id, 0)
    cfg = SearchConfig.from_dict(run.config)
    dense = baselines[0].genotype
    jobs = [(i, None, dense) for i in range(BF16_PAIRS)]  # idx i: its own initial weights, as in step 0

    def records(precision: str, some: list) -> list:
        task_ = make_task(replace(cfg, precision=precision), torch.device("cpu"), lambda msg: None)
        return evaluate(StepJob(task_, 0, some, derive_seed(cfg.seed, 0), lambda: False, NOP, NOP))

    recorded = run.device.endswith(", bf16")
    bf16 = baselines + records("bf16", jobs[len(baselines) :]) if recorded else records("bf16", jobs)
    fp32, metric, std = records("fp32", jobs), run.noise["metric"], run.noise["std"]
    pairs = [(getattr(b, metric), getattr(f, metric)) for b, f in zip(bf16, fp32, strict=True)]
    shift = sum(b - f for b, f in pairs) / len(pairs)
    print(f"{task}: (bf16, fp32) {pairs}, mean shift {shift:.4g}, noise std {std:.4g}")
    assert [c.idx for c in baselines] == [0, 1, 2] and all(c.genotype == dense for c in baselines)
    assert len(pairs) == BF16_PAIRS and all(r.status == "ok" for r in bf16 + fp32) and std > 0
    assert abs(shift) < std


def test_an_rnn_run_records_its_vocabulary_size(demo_run):
    """The search keeps the size of the vocabulary it loaded (in the run's meta), so readers do not
    guess it; it is the size the candidates' parameter counts were costed with."""
    from core.data.corpus import load_corpus
    from core.insight.compare import lm_vocab

    store, run_id, _, task = demo_run
    run = store.get_run(run_id)
    if task == "cnn":
        assert run.vocab_size is None
        return
    cfg = preset_config("rnn", "demo")
    assert run.vocab_size == load_corpus(cfg.data_spec, max_vocab=cfg.max_vocab or None).vocab_size > 2
    assert lm_vocab(run.config, store.steps(run_id)) == run.vocab_size  # what the params say, too
