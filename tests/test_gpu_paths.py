"""The CUDA paths, exercised on a CPU: every defect a first GPU would hit, faked where it shows.

No GPU is needed: a lack of memory is raised by a fake, the union runs on the meta device
(every tensor on one device, or torch refuses), copies and syncs are counted
(tests/gpu_fakes.py), and Ray is given fake GPUs (`num_gpus=2`), whose tasks read
CUDA_VISIBLE_DEVICES as CUDA would: once per process. bench/gpu_check.py runs the real thing.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from dataclasses import replace

import pytest
import torch
from gpu_fakes import TransferCounter
from helpers import TINY_PROXY_CNN

import core.search.evaluators.batched as batched
from core.cell.genotype import Genotype
from core.result import BUILD_FAILED, CandidateStatus, TrainResult
from core.search.candidates import StepJob, init_seed
from core.search.config import preset_config
from core.search.evaluators.batched import (
    BatchedOptions,
    BatchedStats,
    _Candidate,
    _Union,
    candidate_state,
    evaluate_batched,
)
from core.search.evaluators.single import evaluate_single
from core.search.loop import step_candidates
from core.search.proxy_cnn import l2_coefficients
from core.search.tasks import CNNProxyTask
from core.store.jobs import JobStore
from core.store.runs import Store

TINY = dict(TINY_PROXY_CNN, k=4)
SEED = 123
NEVER, NOP = (lambda: False), (lambda *a: None)


def _task(**over) -> CNNProxyTask:
    return CNNProxyTask(preset_config("cnn", "demo", **{**TINY, **over}), torch.device("cpu"), NOP)


def _jobs(task: CNNProxyTask, k: int) -> list:
    dense = Genotype.dense("cnn", task.cfg.nodes, task.cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, k, task.cfg.seed, 1))]
    for job in jobs:
        task.cost(job[2])
    return jobs


@pytest.fixture(scope="module")
def task64() -> CNNProxyTask:
    """float64 data, so batched and one-at-a-time agree exactly (see tests/test_batched.py)."""
    task = _task()
    d = task.data
    task.data = replace(d, x_train=d.x_train.double(), x_val=d.x_val.double())
    return task


def _float64(fn):
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return fn()
    finally:
        torch.set_default_dtype(old)


def _same(a: list, b: list) -> None:
    for x, y in zip(a, b, strict=True):
        assert (x.idx, x.status, x.stop_reason, x.epochs, x.accuracy) == (
            y.idx,
            y.status,
            y.stop_reason,
            y.epochs,
            y.accuracy,
        )
        for rx, ry in zip(x.history, y.history, strict=True):
            assert ry["train_loss"] == pytest.approx(rx["train_loss"], rel=1e-6)  # single's float32 sums


# ----- the union on the device -------------------------------------------------------------------
def test_a_union_step_on_the_meta_device_mixes_no_devices_and_copies_once():
    """Every tensor of a train step and a validation lives on the union's device (torch refuses
    to mix meta and CPU tensors); a training step makes no host-to-device copy (its per-slot
    scalars come from a table copied once an epoch) and no sync."""
    task = _task(k=3)
    jobs = _jobs(task, 3)
    cands = []
    for job in jobs:
        model = task.build(job[2], init_seed(SEED, job[0]))
        cands.append(_Candidate(job, candidate_state(model), task.cost(job[2]), l2_coefficients(model, task.train_cfg)))
    task.device = torch.device("meta")
    union = _Union(cands, task, BatchedOptions(amp=False), BatchedStats())  # autocast has no meta backend
    x = torch.empty(32, 1, 8, 8, device="meta").contiguous(memory_format=torch.channels_last)
    y = torch.empty(32, dtype=torch.long, device="meta")
    flags = [torch.tensor(live, device="meta") for live in ([True] * 3, [True, False, True])]
    with TransferCounter("meta") as counter:
        union.adam.begin_epoch(2)  # the epoch's bias corrections: one copy
        for active in flags:  # as training runs: the flags on the device
            out = union.train_step(x, y, active)
    assert out.device.type == "meta" and out.shape == (3, 2)
    assert counter.copies == 1 and counter.syncs == 0, counter.where
    with TransferCounter("meta") as counter:
        union.train_step(x, y, [True, True, False])  # host flags (the probe): one copy, the scalars
    assert counter.copies == 1 and counter.syncs == 0
    assert union.validate(x, y, 16).device.type == "meta"


def test_one_union_serves_a_chunk_while_its_candidates_stop(task64, monkeypatch):
    """Candidates that stop keep their (frozen) slot: the union is built, and its graph captured,
    once per chunk; before, each stop rebuilt it smaller. Results still equal training alone."""
    built = []
    real_init = _Union.__init__

    def counting_init(self, cands, *args, **kwargs):
        built.append(len(cands))
        real_init(self, cands, *args, **kwargs)

    monkeypatch.setattr(_Union, "__init__", counting_init)
    task = _task(k=4)
    task.data = task64.data
    task.train_cfg = replace(task.train_cfg, floor_epoch=2, floor_acc=0.35)
    jobs = _jobs(task, 4)
    single = _float64(lambda: evaluate_single(StepJob(task, 1, jobs, SEED, NEVER, NOP, NOP)))
    built.clear()
    together = _float64(
        lambda: evaluate_batched(StepJob(task, 1, jobs, SEED, NEVER, NOP, NOP), options=BatchedOptions(chunk=4))
    )
    _same(single, together)
    assert {r.epochs for r in together} == {2, 3}, "some candidates must stop early for this test"
    assert built == [4]


# ----- memory: the probe, and an OOM after it ------------------------------------------------------
def _probing(monkeypatch, error_for) -> None:
    """Make the CPU run probe as CUDA does, with a probe that raises error_for(group) (None: fits)."""
    monkeypatch.setattr(batched, "_probes", lambda task: True, raising=False)

    def probe(task, group, *args):
        exc = error_for(group)
        if exc is not None:
            raise exc

    monkeypatch.setattr(batched, "_probe", probe)


def test_a_probe_s_cudnn_error_means_does_not_fit_and_another_error_fails_only_that_chunk(task64, monkeypatch):
    engine = RuntimeError(
        "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. GET was unable to find an engine to execute this computation"
    )
    _probing(monkeypatch, lambda group: engine if len(group) > 2 else None)
    jobs = _jobs(task64, 4)
    stats = BatchedStats()
    records = _float64(
        lambda: evaluate_batched(
            StepJob(task64, 1, jobs, SEED, NEVER, NOP, NOP), options=BatchedOptions(chunk=4), stats=stats
        )
    )
    assert stats.chunks == [2, 2] and stats.oom_halvings == 1 and all(r.status == CandidateStatus.OK for r in records)

    broken = RuntimeError("an unrelated bug in a kernel")
    _probing(monkeypatch, lambda group: broken if group[0].idx == 0 else None)
    stats = BatchedStats()
    records = _float64(
        lambda: evaluate_batched(
            StepJob(task64, 1, jobs, SEED, NEVER, NOP, NOP), options=BatchedOptions(chunk=2), stats=stats
        )
    )
    assert [r.status for r in records] == [
        CandidateStatus.FAILED,
        CandidateStatus.FAILED,
        CandidateStatus.OK,
        CandidateStatus.OK,
    ] and stats.chunks == [2]
    assert records[0].stop_reason == BUILD_FAILED and "unrelated bug" in records[0].error
    assert batched.is_oom_like(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert batched.is_oom_like(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not batched.is_oom_like(RuntimeError("shape mismatch"))


def test_an_oom_mid_training_requeues_the_members_at_half_size_from_their_saved_state(task64, monkeypatch):
    """The probe said yes, then epoch 2 runs out of memory: the members are trained again from
    their state at the start of epoch 2 in chunks of 2, and end exactly as without the OOM
    (before: all four FAILED, and the step chose among the other candidates)."""
    jobs = _jobs(task64, 4)
    clean = _float64(
        lambda: evaluate_batched(StepJob(task64, 1, jobs, SEED, NEVER, NOP, NOP), options=BatchedOptions(chunk=4))
    )
    from core.data.batches import epoch_batches

    first_epoch = len(epoch_batches(len(task64.data.y_train), task64.train_cfg.batch_size, SEED, 1))
    calls = {"n": 0}
    real_step = _Union.train_step

    def oom_once(self, x, y, active):
        calls["n"] += 1
        if self.k == 4 and calls["n"] == first_epoch + 3:  # in epoch 2
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, x, y, active)

    monkeypatch.setattr(_Union, "train_step", oom_once)
    epochs, stats = [], BatchedStats()
    records = _float64(
        lambda: evaluate_batched(
            StepJob(task64, 1, jobs, SEED, NEVER, lambda i, row: epochs.append((i, row["epoch"])), NOP),
            options=BatchedOptions(chunk=4),
            stats=stats,
        )
    )
    assert stats.chunks == [4, 2, 2] and stats.requeued == 4 and stats.oom_halvings == 1
    _same(clean, records)
    assert sorted(epochs) == sorted(set(epochs))  # no epoch reported twice


# ----- final training -------------------------------------------------------------------------------
def test_a_resumed_checkpoint_loads_onto_the_cpu_and_adam_s_step_stays_there(store_path):
    """The job's device here is `meta` (a stand-in for cuda): the checkpoint must not be mapped
    to it. load_state_dict then puts Adam's moments on the parameters' device and keeps its
    `step` counters on the CPU, as torch.optim wants (on a GPU each step would sync twice per
    parameter on them)."""
    from core.training.context import JobContext, JobObserver

    store = JobStore(store_path)
    job = store.create_job("cnn", Genotype.dense("cnn", 4, 0), {})
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    ctx = JobContext(store, job, threading.Event(), JobObserver(), torch.device("meta"))
    row = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5, "lr": 0.1}
    ctx.epoch_done(row, {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 1, "history": [row]})
    state = ctx.resume_state()
    tensors = [state["model"]["weight"], *state["optimizer"]["state"][0].values()]
    assert {t.device.type for t in tensors} == {"cpu"}
    on_device = torch.nn.Linear(3, 2, device="meta")
    resumed = torch.optim.Adam(on_device.parameters())
    resumed.load_state_dict(state["optimizer"])
    st = resumed.state[on_device.weight]
    assert st["step"].device.type == "cpu" and st["exp_avg"].device.type == "meta"


def test_final_cnn_training_makes_no_host_to_device_copy_per_batch(store_path, monkeypatch):
    """Before: five host-to-device copies a batch (the batch indices, three augmentation draws,
    torch.tensor(len(y), device=...)), each a sync on a GPU. Now the epoch's indices and draws
    go over in one copy. (Reads are not counted here: on CPU, torch.optim's own reads of its CPU
    step counters look like syncs, and on a GPU they are not.)"""
    from core.cell.presets import load_preset
    from core.training.config import train_config
    from core.training.context import JobContext
    from core.training.engine import create_job, run_job

    counter, marks = TransferCounter("cpu"), []
    real_progress = JobContext.progress

    def progress(self, epoch, batch, phase="train", force=False, **extra):
        if phase == "train" and not force:  # the end of a training batch
            marks.append((counter.copies, counter.syncs))
        return real_progress(self, epoch, batch, phase, force, **extra)

    monkeypatch.setattr(JobContext, "progress", progress)
    store = JobStore(store_path)
    job = create_job(
        store,
        load_preset("shrinkcnn-a"),
        train_config("cnn", "demo", threads=1, onnx=False, epochs=1, max_batches=5, augment="crop-flip", device="cpu"),
        "test",
    )
    with counter:
        run_job(store, job)
    assert store.get_job(job).status == "finished", store.get_job(job).error
    assert len(marks) == 5
    per_batch = {b[0] - a[0] for a, b in zip(marks, marks[1:])}
    assert per_batch == {0}, (per_batch, counter.where)


def test_the_rnn_proxy_makes_no_host_sync_per_batch():
    """Before: two a batch (`torch.isfinite(loss)` read as a bool, then `.item()`)."""
    from core.data.corpus import batchify
    from core.nets.rnn import RNNLanguageModel
    from core.search import proxy_rnn

    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), 50, emb=16, hidden=16)
    data = batchify(torch.randint(0, 50, (4000,)), 8, torch.device("cpu"))
    cfg = proxy_rnn.RNNProxyConfig(bptt=10, max_batches_per_epoch=20)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with TransferCounter() as counter:
        loss, moving = proxy_rnn._train_epoch(model, opt, data, cfg, 5, None)
    assert 0 < loss < 10 and 0 < moving < 10
    assert counter.syncs <= 20 // getattr(proxy_rnn, "NAN_CHECK_EVERY", 16) + 3, counter.syncs  # before: 40


def test_a_nan_loss_still_ends_the_rnn_proxy_epoch_as_nan():
    from core.data.corpus import batchify
    from core.nets.rnn import RNNLanguageModel
    from core.search import proxy_rnn

    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), 50, emb=16, hidden=16)
    with torch.no_grad():
        model.encoder.weight.fill_(float("nan"))
    data = batchify(torch.randint(0, 50, (4000,)), 8, torch.device("cpu"))
    loss, moving = proxy_rnn._train_epoch(
        model,
        torch.optim.SGD(model.parameters(), lr=1.0),
        data,
        proxy_rnn.RNNProxyConfig(bptt=10, max_batches_per_epoch=40),
        5,
        None,
    )
    assert loss != loss and moving != moving  # NaN


def test_image_data_too_large_for_the_gpu_is_refused_in_one_line(monkeypatch):
    from core.errors import UserError
    from core.training.cnn import check_device_room

    task = _task()
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100_000, 80 * 2**30))
    with pytest.raises(UserError, match="more than half of the GPU's free") as err:
        check_device_room(task.data, torch.device("cuda"))
    assert len(str(err.value).splitlines()) == 1
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**34, 80 * 2**30))
    check_device_room(task.data, torch.device("cuda"))


def test_the_cuda_rng_state_is_the_current_device_s_and_restores_on_another_gpu_count(monkeypatch):
    """Saved on a 4-GPU machine, resumed on 1 GPU: the job's device state comes back (before:
    all four were saved, and a count mismatch silently skipped the restore)."""
    from core.training import checkpoint

    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device="cuda": torch.full((8,), 7, dtype=torch.uint8))
    monkeypatch.setattr(
        torch.cuda, "get_rng_state_all", lambda: [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]
    )
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": restored.append(state))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.extend(states))
    state = checkpoint.rng_state()
    checkpoint.set_rng_state(state)
    assert len(restored) == 1 and restored[0].tolist() == [7] * 8


def test_cudnn_autotuning_of_one_search_is_not_switched_off_under_another():
    before = torch.backends.cudnn.benchmark
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def search_a():
        with batched._cudnn_benchmark(True):
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def search_b():
        a_in.wait(10)
        with batched._cudnn_benchmark(True):
            b_in.set()
            a_out.wait(10)
            seen.append(torch.backends.cudnn.benchmark)  # A has left; B still runs

    threads = [threading.Thread(target=search_a), threading.Thread(target=search_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == [True] and torch.backends.cudnn.benchmark == before


def test_the_probe_captures_the_cuda_graph_when_training_will(task64, monkeypatch):
    """The graph's private memory pool is part of what must fit (before: the probe ran eagerly)."""
    seen = []
    monkeypatch.setattr(_Union, "train_step", lambda self, x, y, active: seen.append(self.use_graphs))
    monkeypatch.setattr(_Union, "validate", lambda self, x, y, batch: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    task = _task(k=2)
    cands = []
    for job in _jobs(task, 2):
        model = task.build(job[2], 1)
        cands.append(_Candidate(job, candidate_state(model), task.cost(job[2]), l2_coefficients(model, task.train_cfg)))
    task.device = torch.device("meta")
    union_dev = []
    real_init = _Union.__init__

    def init(self, group, t, opts, stats):
        union_dev.append(opts.cuda_graphs)
        real_init(self, group, t, opts, stats)
        self.use_graphs = opts.cuda_graphs

    monkeypatch.setattr(_Union, "__init__", init)
    batched._probe(task, cands, task64.data.to("meta"), SEED, BatchedOptions(cuda_graphs=True), BatchedStats())
    assert union_dev == [True] and seen == [True]


# ----- the driver of a ray search -------------------------------------------------------------------
def test_a_ray_search_s_driver_keeps_its_data_on_the_cpu_on_a_gpu_machine(store_path, monkeypatch):
    """The driver never trains under --evaluator ray: no CUDA context, no GPU copy of the data,
    even where CUDA is present and --device is auto."""
    from core.errors import UserError
    from core.search import loop

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    devices = []

    def make_task(cfg, device, log, data=None):
        devices.append(device)
        raise UserError("stop here: the test only needs the device")

    monkeypatch.setattr(loop, "make_task", make_task)
    store = Store(store_path)
    run = loop.create_run(store, preset_config("cnn", "demo", evaluator="ray"))
    assert loop.run_search(store, run) == "failed"
    assert devices == [torch.device("cpu")] and store.get_run(run).device.startswith("cpu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_address_where_nothing_answers_is_one_line_and_no_run(store_path, capsys):
    """Before: ray.init retried for minutes, with the run row already `running`."""
    from core.cli.main import main

    port = _free_port()
    code = main(
        f"search cnn --preset demo --evaluator ray --ray-address 127.0.0.1:{port}".split()
        + ["--store", str(store_path)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"cannot reach Ray cluster 127.0.0.1:{port}: nothing answers" in err
    assert Store(store_path).list_runs() == []


def test_a_cluster_that_never_answers_the_handshake_is_given_up_in_one_line(monkeypatch):
    """Something listens at the address but no Ray handshake comes: the connection gives up after
    CONNECT_TIMEOUT_S (25 s; here a fraction) rather than ray.init's minutes of retries."""
    ray = pytest.importorskip("ray")
    from core.search.evaluators import ray_eval

    if ray.is_initialized():
        pytest.skip("this process is on a cluster already")
    released = threading.Event()
    monkeypatch.setattr(ray, "init", lambda **kw: released.wait(30))
    monkeypatch.setattr(ray_eval, "CONNECT_TIMEOUT_S", 0.5, raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        try:
            with pytest.raises(ray_eval.RayEvaluatorError, match="no Ray cluster answered within 0.5 s"):
                ray_eval.connect(address)
        finally:
            released.set()
    assert ray_eval._connected_to == []


# ----- Ray with fake GPUs ---------------------------------------------------------------------------
class FakeData:
    """What the driver puts into the object store for the fake task."""

    def to(self, device):
        return self


class FakeGPUTask:
    """A proxy task whose 'training' reports the GPU CUDA would use in this worker process:
    CUDA reads CUDA_VISIBLE_DEVICES once, at the process's first CUDA call, so the first value
    this process saw is the one it would train on, whatever Ray sets for later tasks."""

    kind = "cnn"

    def __init__(self, cfg, device, log, data=None) -> None:
        self.cfg, self.device, self.evaluator, self.data = cfg, device, "single", data or FakeData()

    def build(self, genotype, seed):
        return None

    def cost(self, genotype):
        from core.result import Cost

        return Cost(params=1, macs=1)

    def train(self, model, data_seed, should_stop, on_epoch):
        import os as _os
        import time as _time

        _os.environ.setdefault("FAKE_CUDA_DEVICE", _os.environ.get("CUDA_VISIBLE_DEVICES", "?"))
        _time.sleep(1.0)  # tasks overlap, so both GPUs are in use at once
        return TrainResult(
            status=CandidateStatus.OK,
            accuracy=0.5,
            epochs=1,
            error=f"cuda {_os.environ['FAKE_CUDA_DEVICE']} pid {_os.getpid()}",
        )

    def score(self, res, cost):
        return 0.5

    def worker_data(self):
        return self.data.to("cpu")


@pytest.fixture(scope="module")
def fake_gpu_cluster():
    """One local cluster with two fake GPUs for the module's Ray tests."""
    ray = pytest.importorskip("ray", reason="ray is not installed")
    from core.search.evaluators import ray_eval

    if ray.is_initialized():
        ray_eval.disconnect()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": str(ray_eval.ROOT)}},
    )
    ray_eval._connected_to[:] = ["local"]
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fakes travel by value
    yield ray_eval
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray_eval.disconnect()


def _fake_task(**over) -> FakeGPUTask:
    cfg = preset_config("cnn", "demo", **{**TINY, "evaluator": "ray", "ray_gpus_per_candidate": 1.0, **over})
    return FakeGPUTask(cfg, torch.device("cpu"), NOP)


def test_each_gpu_task_trains_on_and_reports_the_gpu_ray_gave_it(fake_gpu_cluster, monkeypatch):
    """Before: GPU tasks reused workers, so a worker stayed on the GPU of its first task (CUDA
    reads CUDA_VISIBLE_DEVICES once) while its label named the GPU Ray gave the later task."""
    ray_eval = fake_gpu_cluster
    monkeypatch.setattr(ray_eval, "preflight_cuda", lambda num_gpus: "CUDA check: skipped (fake GPUs)", raising=False)
    task = _fake_task(k=3, ray_chunk=1)  # 3 tasks on 2 GPUs: one GPU takes a second task
    dense = Genotype.dense("cnn", 4, 0)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(list(dense.edges)[:3])]
    records = ray_eval.evaluate_ray(StepJob(task, 1, jobs, SEED, NEVER, NOP, NOP))
    table = [(r.idx, r.worker.rsplit(" gpu ", 1)[-1], r.error.split()[1], r.error.split()[3]) for r in records]
    print("\nfake-GPU Ray run: candidate | GPU in label | GPU CUDA would use | worker pid")
    for row in table:
        print("  " + " | ".join(map(str, row)))
    assert len(records) == 3 and all(" gpu " in r.worker for r in records)
    assert all(label == cuda for _, label, cuda, _ in table), table  # the label says which GPU, truly
    assert len({pid for *_, pid in table}) == 3  # a fresh worker per GPU task
    assert {label for _, label, _, _ in table} == {"0", "1"}  # both GPUs used


@pytest.mark.skipif(torch.cuda.is_available(), reason="here torch has CUDA: the fake GPUs' workers would see it")
def test_a_gpu_cluster_whose_torch_has_no_cuda_is_refused_once_in_one_line(fake_gpu_cluster):
    """The preflight task runs where the search's GPU tasks would; here torch is a CPU build.
    Before: prepare succeeded and every candidate failed deep inside its task."""
    ray_eval = fake_gpu_cluster
    with pytest.raises(ray_eval.RayEvaluatorError, match="without CUDA") as err:
        ray_eval.prepare_ray(_fake_task(), NOP)
    assert len(str(err.value).splitlines()) == 1


def test_on_gpus_a_whole_step_is_one_task_by_default():
    from core.search.evaluators.ray_eval import task_chunk

    assert task_chunk(preset_config("cnn", "paper", ray_gpus_per_candidate=1.0)) == 10
    assert task_chunk(preset_config("cnn", "paper")) == 1
    assert task_chunk(preset_config("cnn", "paper", ray_gpus_per_candidate=1.0, ray_chunk=2)) == 2
    assert task_chunk(preset_config("rnn", "paper", ray_gpus_per_candidate=1.0)) == 1  # no RNN union


def test_bf16_casts_the_flat_weights_once_a_step_with_autocast_s_numbers(task64):
    """Autocast casts each conv weight on its own (about a hundred small kernels a step at paper
    shapes); the union casts its flat buffer once, and trains exactly as autocast would."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from core.search.evaluators.batched import StackedCNN

    class Casts(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default and kwargs.get("dtype") == torch.bfloat16:
                self.n += 1
            return func(*args, **kwargs)

    task = _task(k=3)
    cands = []
    for job in _jobs(task, 3):
        model = task.build(job[2], init_seed(SEED, job[0]))
        cands.append(_Candidate(job, candidate_state(model), task.cost(job[2]), l2_coefficients(model, task.train_cfg)))
    x = task.data.x_train[:32].contiguous(memory_format=torch.channels_last)
    y = task.data.y_train[:32]
    once, per_weight = (_Union(cands, task, BatchedOptions(amp=True), BatchedStats()) for _ in range(2))
    per_weight.net.cast_weights = lambda dtype: StackedCNN.cast_weights(per_weight.net, None)  # autocast's way
    with Casts() as casts:
        a = once.train_step(x, y, [True] * 3)
    with Casts() as autocast_casts:
        b = per_weight.train_step(x, y, [True] * 3)
    assert casts.n <= 3 < autocast_casts.n // 4, (casts.n, autocast_casts.n)  # weights + images (+ bias)
    assert torch.equal(a, b) and torch.equal(once.net.flat, per_weight.net.flat)
    assert torch.equal(once.adam.exp_avg, per_weight.adam.exp_avg)
