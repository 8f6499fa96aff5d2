"""The batched evaluator trains each candidate exactly as training it alone would.

Two tiers of proof:
- float32, mechanism by mechanism: the union network's forward, gradients and BN statistics
  equal each candidate's own model's, and FlatAdam is torch.optim.Adam bit for bit;
- float64, end to end: whole steps and a whole search, batched vs one-at-a-time. In float32
  the two differ like any two float32 runs of Adam do (Adam turns ~1e-8 rounding noise in
  near-zero gradients into lr-sized steps; the reference itself moves as much between 1 and 2
  CPU threads); in float64 that noise is ~1e-16, so the comparison can be exact: accuracies,
  epochs and stop reasons equal, losses equal to the reference's float32 bookkeeping.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_PROXY_CNN

import core.data.images as data_mod
import core.nets.cnn as cnn
import core.search.evaluators.batched as batched
from core.cell.genotype import Genotype
from core.nets.cnn import CNNConfig, build_cnn, proxy_config
from core.result import BUILD_FAILED, LOW_ACCURACY, NAN, USER_STOP, CandidateStatus
from core.search.candidates import StepJob, init_seed
from core.search.config import preset_config
from core.search.evaluators import resolve_evaluator
from core.search.evaluators.batched import (
    BatchedOptions,
    BatchedStats,
    FlatAdam,
    StackedCNN,
    auto_chunk,
    candidate_state,
    evaluate_batched,
)
from core.search.evaluators.single import evaluate_single
from core.search.loop import choose, create_run, run_search, step_candidates
from core.search.tasks import CNNProxyTask
from core.store.runs import RunStatus, Store

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TINY = dict(TINY_PROXY_CNN, k=6)
STEP_SEED = 123
nop = lambda *args: None  # noqa: E731


# ----- helpers ------------------------------------------------------------------------------------
@contextmanager
def float64() -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def make_task(device: str = "cpu", **overrides) -> CNNProxyTask:
    cfg = preset_config("cnn", "demo", **{**TINY, **overrides})
    return CNNProxyTask(cfg, torch.device(device), lambda msg: None)


def as_float64(task: CNNProxyTask) -> CNNProxyTask:
    d = task.data
    task.data = replace(d, x_train=d.x_train.double(), x_val=d.x_val.double())
    return task


def step_jobs(task: CNNProxyTask, k: int) -> list:
    dense = Genotype.dense("cnn", task.cfg.nodes, task.cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, k, task.cfg.seed, 1))]
    for job in jobs:  # torchinfo counts in float32: fill the cost cache before any float64 section
        task.cost(job[2])
    return jobs


def both(task: CNNProxyTask, jobs: list, options: BatchedOptions | None = None) -> tuple[list, list]:
    """(single records, batched records) of the same step, in float64."""
    with float64():
        single = evaluate_single(StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop))
        together = evaluate_batched(StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=options)
    return single, together


def assert_same(single: list, together: list) -> None:
    assert [r.idx for r in single] == [r.idx for r in together]
    for a, b in zip(single, together):
        assert (a.status, a.stop_reason, a.epochs, a.accuracy) == (b.status, b.stop_reason, b.epochs, b.accuracy), a.idx
        assert a.score == pytest.approx(b.score, abs=1e-12) if a.score is not None else b.score is None
        assert a.macs == b.macs and a.params == b.params and a.error == b.error
        for ra, rb in zip(a.history, b.history):
            for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-6, abs=1e-9), (a.idx, ra["epoch"], key)


def candidates(g: Genotype, cfg: CNNConfig, k: int, seed: int = 0) -> tuple[list[Genotype], list[torch.nn.Module]]:
    edges = list(g.edges)
    random.Random(seed).shuffle(edges)
    genos = [g.without_edge(e) for e in edges if g.without_edge(e).num_edges > 0][:k]
    models = []
    for i, geno in enumerate(genos):
        torch.manual_seed(i)
        models.append(build_cnn(geno, cfg))
    return genos, models


def loaded_union(genos: list[Genotype], models: list, cfg: CNNConfig, randomise: bool = True) -> StackedCNN:
    net = StackedCNN(genos, cfg)
    for slot, model in enumerate(models):
        if randomise:  # non-trivial BN statistics and affine parameters exercise every path
            with torch.no_grad():
                for name, buf in model.named_buffers():
                    if "running" in name:
                        buf.uniform_(0.5, 1.5)
                for p in model.parameters():
                    if p.dim() == 1:
                        p.uniform_(-1, 1)
        net.load(slot, candidate_state(model))
    return net


SMALL = proxy_config(in_channels=1, num_classes=10, input_size=8, stem_channels=8, base_width=4)
TWO_STAGES = dict(in_channels=1, input_size=8, stem_channels=8, widths=(4, 8), pools=(False, True))
VARIANTS = [
    (Genotype.dense("cnn", 5, 1), SMALL),
    (Genotype.dense("cnn", 6, 2), SMALL),
    (Genotype("cnn", Genotype.dense("cnn", 6, 0).ops, ((0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (1, 5))), SMALL),
    (
        Genotype.dense("cnn", 5, 3),
        CNNConfig(**TWO_STAGES, cells_per_stage=(2, 2), head_channels=12, activation="swish"),
    ),
    (Genotype.dense("cnn", 5, 3), CNNConfig(**TWO_STAGES, cells_per_stage=(2, 1), residual=False)),
]


# ----- float32: the union network is each candidate's network --------------------------------------
@pytest.mark.parametrize("genotype,cfg", VARIANTS)
def test_union_forward_and_bn_statistics_equal_each_candidates_own(genotype, cfg):
    genos, models = candidates(genotype, cfg, 10)
    net = loaded_union(genos, models, cfg)
    x = torch.randn(6, 1, 8, 8).contiguous(memory_format=torch.channels_last)
    for training in (False, True):
        net.training = training
        out = net(x)
        for slot, model in enumerate(models):
            model.train(training)
            ref = model(x)
            assert torch.allclose(out[:, slot], ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    for slot, model in enumerate(models):  # the training-mode forward moved each slot's statistics
        stats = net.extract(slot).stats
        for name, buf in model.named_buffers():
            if "running" in name:
                assert torch.allclose(stats[name], buf, atol=1e-5), name


@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-10), (torch.float32, 2e-3)])
def test_union_gradients_equal_each_candidates_own(dtype, tolerance):
    """float32 BN backward on a tiny batch cancels a lot (1e-4 relative noise); float64 shows the exactness."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        genotype, cfg = VARIANTS[0]
        genos, models = candidates(genotype, cfg, 10)
        net = loaded_union(genos, models, cfg)
        x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
        logits = net(x.contiguous(memory_format=torch.channels_last))
        losses = F.cross_entropy(logits.transpose(1, 2), y[:, None].expand(-1, len(models)), reduction="none")
        losses.mean(0).sum().backward()
        for slot, model in enumerate(models):
            F.cross_entropy(model(x), y).backward()
            for s in net.slotted.values():
                if not s.stat and s.sources[slot]:
                    ref = model.get_parameter(s.sources[slot]).grad
                    mine = net._block(net.view(s, net.grad), s, slot).reshape(ref.shape)
                    assert (mine - ref).abs().max() <= tolerance * ref.abs().max(), s.sources[slot]
    finally:
        torch.set_default_dtype(old)


def test_positions_a_candidate_lacks_are_not_owned_and_hold_zeros():
    genotype, cfg = VARIANTS[0]
    genos, models = candidates(genotype, cfg, 10)
    net = loaded_union(genos, models, cfg, randomise=False)
    owned = int(net.owned.sum())
    assert owned == sum(sum(p.numel() for p in m.parameters()) for m in models)
    assert torch.count_nonzero(net.flat[~net.owned]) == 0


def test_load_then_extract_gives_back_the_candidate():
    genotype, cfg = VARIANTS[3]
    genos, models = candidates(genotype, cfg, 6)
    net = loaded_union(genos, models, cfg)
    for slot, model in enumerate(models):
        state = net.extract(slot)
        for name, p in model.named_parameters():
            assert torch.equal(state.params[name], p.detach()), name
        assert set(state.params) | set(state.stats) == net.sources(slot)


def test_flat_adam_is_torch_adam_per_slot_bit_for_bit():
    torch.manual_seed(0)
    k, n = 3, 500
    start = torch.randn(k * n)
    owned = torch.rand(k * n) > 0.2
    refs = [torch.nn.Parameter(start[c * n : (c + 1) * n].clone()) for c in range(k)]
    opts = [torch.optim.Adam([r], lr=4e-3, weight_decay=1e-5) for r in refs]
    flat, grad = start.clone(), torch.zeros(k * n)
    adam = FlatAdam(flat, grad, torch.arange(k).repeat_interleave(n), owned, k, 4e-3, 1e-5)
    for it in range(12):
        active = [True, it % 3 != 0, it < 4]  # slots skip steps: their step counts fall behind
        g = torch.randn(k * n)
        grad.copy_(g)
        adam.step(active)
        for c in range(k):
            if active[c]:
                refs[c].grad = g[c * n : (c + 1) * n].clone()
                opts[c].step()
    for c in range(k):
        mine, mask = flat[c * n : (c + 1) * n], owned[c * n : (c + 1) * n]
        assert torch.equal(mine[mask], refs[c].detach()[mask])
        assert torch.equal(mine[~mask], start[c * n : (c + 1) * n][~mask])  # never touched
    assert adam.steps == [12, 8, 4]


# ----- float64: whole steps, batched vs one at a time ----------------------------------------------
@pytest.fixture(scope="module")
def task64() -> CNNProxyTask:
    return as_float64(make_task())


@pytest.fixture(scope="module")
def single64(task64) -> tuple[list, list]:
    """(jobs, their one-at-a-time records) of a 6-candidate step in float64, for both chunkings."""
    jobs = step_jobs(task64, 6)
    with float64():
        return jobs, evaluate_single(StepJob(task64, 1, jobs, STEP_SEED, lambda: False, nop, nop))


@pytest.mark.parametrize("chunk", [0, 6])
def test_batched_step_equals_one_at_a_time(task64, single64, chunk):
    """chunk 0 is the CPU default (one slot per union), 6 puts all candidates in one union."""
    jobs, single = single64
    with float64():
        together = evaluate_batched(
            StepJob(task64, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(chunk=chunk)
        )
    assert_same(single, together)
    assert all(r.status == CandidateStatus.OK and r.epochs == 3 for r in together)


def test_early_breaks_and_stops_are_per_candidate():
    """Epoch 2: some candidates pass 50% running accuracy and skip the rest of the epoch while
    the others train on; after epoch 2 the floor stops two, the rest go on in a smaller union."""
    task = as_float64(make_task())
    task.train_cfg = replace(task.train_cfg, train_acc_stop=0.5, floor_epoch=2, floor_acc=0.15)
    jobs = step_jobs(task, 6)
    stats = BatchedStats()
    with float64():
        single = evaluate_single(StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop))
        together = evaluate_batched(
            StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(chunk=6), stats=stats
        )
    assert_same(single, together)
    epoch2 = [r.history[1]["train_acc"] for r in together]
    assert any(a > 0.5 for a in epoch2) and any(a <= 0.5 for a in epoch2)  # broke early / ran the whole epoch
    reasons = {r.stop_reason for r in together}
    assert LOW_ACCURACY in reasons and any(r.epochs == 3 for r in together)
    assert stats.chunks == [6]


class NaNTask(CNNProxyTask):
    """Candidate 1 starts with a NaN stem weight: its loss is NaN from the first batch."""

    def build(self, genotype, seed):
        model = super().build(genotype, seed)
        if seed == init_seed(STEP_SEED, 1):
            with torch.no_grad():
                model.stem[0].weight[0, 0, 0, 0] = float("nan")
        return model


def test_a_nan_candidate_fails_alone(task64):
    task = as_float64(NaNTask(task64.cfg, torch.device("cpu"), lambda msg: None))
    jobs = step_jobs(task, 4)
    single, together = both(task, jobs, BatchedOptions(chunk=4))
    assert_same(single, together)
    assert (
        together[1].status == CandidateStatus.FAILED and together[1].stop_reason == NAN and together[1].accuracy is None
    )
    assert all(r.status == CandidateStatus.OK for i, r in enumerate(together) if i != 1)


def test_nan_in_epoch_3_is_scored_from_the_best_epoch_in_both_and_can_be_chosen(task64, monkeypatch):
    """From epoch 3 one poisoned (NaN) training image joins the epoch's second batch: every
    candidate stops there (none breaks its epoch after one batch), scored from epochs 1-2
    (the official keeps best_val_acc), in both evaluators alike; the step still chooses one,
    where before every candidate failed and the search stopped."""
    import core.search.proxy_cnn as proxy_cnn

    task = as_float64(make_task())
    d = task.data
    poison = len(d.y_train)
    task.data = replace(
        d,
        x_train=torch.cat([d.x_train, torch.full_like(d.x_train[:1], float("nan"))]),
        y_train=torch.cat([d.y_train, d.y_train[:1]]),
    )
    real = proxy_cnn.epoch_batches

    def poisoned(n: int, batch_size: int, data_seed: int, epoch: int, limit: int = 0) -> list:
        batches = real(n - 1, batch_size, data_seed, epoch, limit)
        if epoch >= 3:
            batches[1] = torch.cat([batches[1], torch.tensor([poison])])
        return batches

    monkeypatch.setattr(proxy_cnn, "epoch_batches", poisoned)
    monkeypatch.setattr(batched, "epoch_batches", poisoned)
    jobs = step_jobs(task, 4)
    single, together = both(task, jobs, BatchedOptions(chunk=4))
    assert_same(single, together)
    stopped = [r for r in together if r.stop_reason == NAN]
    assert len(stopped) == 4 and all(
        r.status == CandidateStatus.OK and r.epochs == 2 and r.score is not None for r in stopped
    )
    assert all(r.accuracy == max(h["val_acc"] for h in r.history) for r in stopped)
    assert choose(together) is not None and choose(together).stop_reason == NAN


class BrokenBuildTask(CNNProxyTask):
    def build(self, genotype, seed):
        if seed == init_seed(STEP_SEED, 0):
            raise RuntimeError("cannot build this one")
        return super().build(genotype, seed)


def test_a_candidate_that_cannot_be_built_fails_and_the_rest_train(task64):
    task = as_float64(BrokenBuildTask(task64.cfg, torch.device("cpu"), lambda msg: None))
    jobs = step_jobs(task, 3)
    single, together = both(task, jobs, BatchedOptions(chunk=3))
    assert_same(single, together)
    assert together[0].stop_reason == BUILD_FAILED and "cannot build" in together[0].error


def test_chunks_give_the_same_results_and_are_reported(task64):
    jobs = step_jobs(task64, 5)
    stats = BatchedStats()
    with float64():
        whole = evaluate_batched(
            StepJob(task64, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(chunk=5)
        )
        split = evaluate_batched(
            StepJob(task64, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(chunk=2), stats=stats
        )
    assert_same(whole, split)
    assert stats.chunks == [2, 2, 1]


def test_chunks_are_halved_until_they_fit(task64, monkeypatch):
    """On CUDA a one-batch probe decides; here a fake probe says only 3 candidates fit."""
    monkeypatch.setattr(batched, "_fits", lambda task, group, *args: len(group) <= 3)
    jobs = step_jobs(task64, 6)
    stats = BatchedStats()
    with float64():
        records = evaluate_batched(
            StepJob(task64, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(chunk=6), stats=stats
        )
    assert stats.chunks == [3, 3] and stats.oom_halvings == 1
    assert all(r.status == CandidateStatus.OK for r in records)


def test_callbacks_follow_every_candidate(task64):
    jobs = step_jobs(task64, 3)
    epochs, results = [], []
    with float64():
        records = evaluate_batched(
            StepJob(
                task64,
                1,
                jobs,
                STEP_SEED,
                lambda: False,
                lambda i, row: epochs.append((i, row["epoch"])),
                results.append,
            ),
            options=BatchedOptions(chunk=3),
        )
    assert sorted(epochs) == [(i, e) for i in range(3) for e in (1, 2, 3)]
    assert sorted(r.idx for r in results) == [0, 1, 2] and records == sorted(results, key=lambda r: r.idx)


def test_a_stop_request_returns_at_once_with_stopped_records(task64):
    jobs = step_jobs(task64, 4)
    calls = {"n": 0, "after": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        if calls["n"] > 5:
            calls["after"] += 1
            return True
        return False

    results = []
    with float64():
        records = evaluate_batched(
            StepJob(task64, 1, jobs, STEP_SEED, should_stop, nop, results.append), options=BatchedOptions(chunk=4)
        )
    assert calls["after"] == 1  # asked once more, then no more training
    assert len(records) == 4 and all(
        r.status == CandidateStatus.STOPPED and r.stop_reason == USER_STOP for r in records
    )
    assert len(results) == 4


def test_bf16_autocast_path_trains(task64):
    """The GPU's mixed-precision path, exercised on CPU (bf16 autocast works there too)."""
    task = make_task(epochs=1)
    records = evaluate_batched(
        StepJob(task, 1, step_jobs(task, 3), STEP_SEED, lambda: False, nop, nop),
        options=BatchedOptions(chunk=3, amp=True),
    )
    assert all(r.status == CandidateStatus.OK and 0.0 <= r.accuracy <= 1.0 for r in records)


# ----- the search -----------------------------------------------------------------------------------
def test_auto_uses_batched_for_cnn_on_every_device_and_a_setting_switches_it_anywhere():
    cfg = preset_config("cnn", "demo")
    assert resolve_evaluator(cfg, torch.device("cuda")) == "batched"
    assert resolve_evaluator(cfg, torch.device("cpu")) == "batched"  # one per union, channels_last
    assert resolve_evaluator(preset_config("rnn", "demo"), torch.device("cpu")) == "single"
    for device in ("cpu", "cuda"):
        for choice in ("single", "batched"):
            assert resolve_evaluator(replace(cfg, evaluator=choice), torch.device(device)) == choice
    assert auto_chunk(torch.device("cuda"), 10) == 10 and auto_chunk(torch.device("cpu"), 10) == 1


def test_both_evaluators_choose_the_same_edges(store_path, monkeypatch):
    """A whole small search per evaluator, fixed seed, in float64 (see the module docstring)."""
    load = data_mod.load_proxy

    def load64(*args, **kwargs):
        d = load(*args, **kwargs)
        return replace(d, x_train=d.x_train.double(), x_val=d.x_val.double())

    cost = cnn.cnn_cost

    def cost32(*args, **kwargs):
        old = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)
        try:
            return cost(*args, **kwargs)
        finally:
            torch.set_default_dtype(old)

    monkeypatch.setattr(data_mod, "load_proxy", load64)
    monkeypatch.setattr(cnn, "cnn_cost", cost32)
    store = Store(store_path)
    runs = {}
    with float64():
        for evaluator in ("single", "batched"):
            cfg = preset_config("cnn", "demo", **{**TINY, "k": 3, "epochs": 2, "max_steps": 3}, evaluator=evaluator)
            runs[evaluator] = create_run(store, cfg)
            assert run_search(store, runs[evaluator]) == RunStatus.FINISHED
    steps = {e: store.steps(r) for e, r in runs.items()}
    assert [s.removed for s in steps["single"]] == [s.removed for s in steps["batched"]]
    assert len(steps["single"]) == 4
    for a, b in zip(steps["single"], steps["batched"]):
        assert a.score == pytest.approx(b.score, abs=1e-12) and a.genotype == b.genotype
    assert {e: store.get_run(r).evaluator for e, r in runs.items()} == {"single": "single", "batched": "batched"}


# ----- CUDA only (skipped without a GPU) ------------------------------------------------------------
@CUDA
def test_cuda_batched_step_matches_single_in_float32_statistically():
    """bf16 on the GPU cannot match float32 exactly; same statuses and accuracies within a few points."""
    task = make_task("cuda", epochs=2)
    jobs = step_jobs(task, 4)
    stats = BatchedStats()
    single = evaluate_single(StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop))
    together = evaluate_batched(StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop), stats=stats)
    assert [r.status for r in together] == [r.status for r in single]
    for a, b in zip(single, together):
        assert abs(a.accuracy - b.accuracy) < 0.15
    assert stats.peak_bytes > 0 and stats.chunks == [4]


@CUDA
def test_cuda_graph_replay_equals_eager():
    """Recording the step in a CUDA graph must not change the training (float32, no autocast).
    cuDNN is made deterministic; the tolerances still allow for atomics elsewhere, while a broken
    capture (e.g. a stale static input, i.e. the same batch every step) would miss them by far."""
    before = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        task = make_task("cuda", epochs=2)
        jobs = step_jobs(task, 4)
        eager = evaluate_batched(
            StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop), options=BatchedOptions(amp=False)
        )
        stats = BatchedStats()
        graphed = evaluate_batched(
            StepJob(task, 1, jobs, STEP_SEED, lambda: False, nop, nop),
            options=BatchedOptions(amp=False, cuda_graphs=True),
            stats=stats,
        )
    finally:
        torch.backends.cudnn.deterministic = before
    assert stats.graphs >= 1
    for a, b in zip(eager, graphed):
        assert (a.status, a.epochs) == (b.status, b.epochs)
        assert abs(a.accuracy - b.accuracy) <= 0.05
        assert b.history[0]["train_loss"] == pytest.approx(a.history[0]["train_loss"], rel=1e-4)
