"""The batched evaluator: the k candidates of a shrink step trained at the same time, as one network.

Why: one candidate of the paper's proxy is ~28M MACs per image, far too little work to keep
a GPU busy; trained one at a time, a step is bound by kernel launches and host syncs. Here
the candidates live side by side in a `StackedCNN` (one channel slot each), so every kernel
does k candidates' work, and one host sync per batch serves all of them.

Each candidate still trains exactly as `core.search.proxy_cnn.train_proxy` would train it alone:
the same initial weights (task.build with the same seed), the same batches (epoch_batches),
its own Adam state and step count (FlatAdam), its own BN statistics, and the same stop rules
(`stop_reason`, the running-accuracy epoch break with the same `Running` EMAs, NaN by
`nan_outcome`), and
the same Keras-style L2 (`l2_coefficients`, as a per-element decay in FlatAdam). A candidate that breaks its epoch
early is frozen (no weight, moment or BN-statistic change) until the next epoch; one that
is finished stays frozen in its slot for the rest of the chunk (the union is built, and its
CUDA graph captured, once per chunk: rebuilding it smaller costs more than the idle slot).
The stop rules' running values are kept on the device and read once an epoch, so a batch
makes no host sync; under bf16 the weights are cast once a step, from the flat buffer.
On CPU, in float32, results match training alone within
float tolerance (tests/test_batched.py proves it).

Devices. CUDA: all k candidates in one union by default, bf16 autocast, channels_last; a
chunk that does not fit is halved (a one-batch probe catches the OOM, or the cuBLAS/cuDNN
errors that stand in for one, before any training), and one that runs out of memory later is
re-queued at half the size from its members' state at the start of that epoch;
optionally the whole train step is replayed from a CUDA graph (`cuda_graphs`; a union trains
for hundreds of steps, so one capture per union and batch size is cheap, while torch.compile's
compile time per union would not pay back). CPU: one candidate per union by default
(`auto_chunk`): with no launch overhead to amortise, k-wide tensors only cost cache; the
CPU gain over the one-at-a-time evaluator is channels_last, which oneDNN runs faster for the
depthwise and pointwise convs that dominate these cells (bench/bench_evaluators.py measures the
gain; the README quotes it).

Its private parts: `_stacked` (the union network) and `_flat_adam` (per-slot Adam); nothing outside
this package imports them (tests and benchmarks take their names from here).
May import: what core.search.evaluators may (core.cell, core.nets, core.data, core.result,
core.search.candidates, core.search.proxy_cnn, core.store records).
"""

from __future__ import annotations

import gc
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from core.data.batches import epoch_batches
from core.data.images import ImageData
from core.errors import one_line
from core.result import BUILD_FAILED, NAN, USER_STOP, CandidateStatus, Cost, TrainResult
from core.search.candidates import (
    EpochFn,
    Job,
    StepJob,
    StopFn,
    build_candidate,
    make_record,
)
from core.search.evaluators.batched._flat_adam import FlatAdam
from core.search.evaluators.batched._stacked import CandidateState, StackedCNN, candidate_state
from core.search.proxy_cnn import (
    ERROR_CHARS,
    BestEpoch,
    ProxyTrainConfig,
    Running,
    finished_result,
    l2_coefficients,
    nan_outcome,
    stop_reason,
    val_batch,
)
from core.store.runs import CandidateRecord

ResultFn = Callable[[CandidateRecord], None]
MIN_VAL_BATCH = 64
GRAPH_WARMUP = 3


@dataclass
class BatchedOptions:
    """How the batched evaluator runs; the defaults are what the search uses."""

    chunk: int = 0  # candidates trained together; 0 = auto: all on CUDA (halved until
    # they fit), 1 on CPU (measured: stacking does not pay there)
    amp: bool | None = None  # bf16 autocast; None = the task's precision (--precision)
    cuda_graphs: bool = False  # replay the train step from a CUDA graph (CUDA only)
    val_batch: int = 0  # validation images per forward; 0 = proxy_cnn.val_batch / candidates
    cudnn_benchmark: bool = False  # cuDNN autotuning (each new union has new shapes: measure first)


@dataclass
class BatchedStats:
    """What one evaluate_batched call did, for benchmarks and logs."""

    chunks: list[int] = field(default_factory=list)  # size of each chunk trained
    oom_halvings: int = 0
    requeued: int = 0  # candidates re-queued after an OOM mid-training
    peak_bytes: int = 0  # CUDA peak allocated memory (0 on CPU)
    graphs: int = 0  # CUDA graphs captured


@dataclass(eq=False)
class _Candidate:
    """One candidate's bookkeeping: its state between unions, its history and its result."""

    job: Job
    state: CandidateState
    cost: Cost
    l2: dict[str, float] = field(default_factory=dict)  # lambda per parameter name (l2_coefficients)
    history: list[dict] = field(default_factory=list)
    best: BestEpoch = field(default_factory=BestEpoch)
    result: TrainResult | None = None
    next_epoch: int = 1  # > 1 when re-queued after an OOM: it goes on from its saved state

    @property
    def idx(self) -> int:
        return self.job[0]


class _Stopped(Exception):
    """should_stop() said yes between two batches."""


class _UnionError(Exception):
    """The union network raised while building or running: its candidates fail, the search goes on."""

    def __init__(self, message: str, oom: bool = False) -> None:
        super().__init__(message)
        self.oom = oom


@contextmanager
def _union_errors() -> Iterator[None]:
    """Any exception from the union's own computation becomes a one-line _UnionError (marked when
    it is a lack of memory); errors of the callbacks (on_epoch, on_result) are not caught here and
    propagate as in train_proxy."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a failing union fails its candidates only
        raise _UnionError(one_line(exc, typed=True, limit=ERROR_CHARS), oom=is_oom_like(exc)) from exc


# What CUDA libraries say when they run out of memory without a torch OutOfMemoryError: cuBLAS
# and cuDNN fail to allocate their handles or workspaces, and cuDNN's v8 API then reports that
# no engine can run the convolution.
OOM_MARKERS = (
    "out of memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_NOT_INITIALIZED",
    "unable to find an engine",
    "CUDNN_STATUS_INTERNAL_ERROR",
)


def is_oom_like(exc: BaseException) -> bool:
    """Does this error mean "does not fit" (try fewer candidates) rather than "is broken"?"""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(m.lower() in text.lower() for m in OOM_MARKERS)


# ----- one union network and its optimizer ------------------------------------------------------


class _Union:
    """The still-training candidates of a chunk as one StackedCNN with one FlatAdam."""

    def __init__(self, cands: list[_Candidate], task, opts: BatchedOptions, stats: BatchedStats) -> None:
        dev = torch.device(task.device)
        self.k = len(cands)
        net = StackedCNN([c.job[2] for c in cands], task.net)  # laid out and filled on the host
        exp_avg, exp_avg_sq = torch.zeros_like(net.flat), torch.zeros_like(net.flat)
        for slot, cand in enumerate(cands):
            net.load(slot, cand.state, exp_avg, exp_avg_sq)
        self.net = net.to(dev)
        cfg: ProxyTrainConfig = task.train_cfg
        self.adam = FlatAdam(
            net.flat,
            net.grad,
            net.slot_of_param,
            net.owned,
            self.k,
            cfg.lr,
            _decay(net, cands),
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            steps=[c.state.step for c in cands],
        )
        # bf16 stands in for float32 only: a float64 union (the equivalence tests) stays float64
        wanted = opts.amp if opts.amp is not None else getattr(task, "precision", "fp32") == "bf16"
        self.amp = wanted and net.flat.dtype == torch.float32
        self.use_graphs = opts.cuda_graphs and dev.type == "cuda"
        self.graphs: dict[int, tuple] = {}
        self.stats = stats

    def snapshot(self) -> tuple[list[Tensor], list[int]]:
        """The union's whole training state on the host (one copy per buffer): what an OOM later
        in the epoch re-queues its members from."""
        host = [
            b.detach().to("cpu", copy=True)
            for b in (self.net.flat, self.net.stats, self.adam.exp_avg, self.adam.exp_avg_sq)
        ]
        return host, list(self.adam.steps)

    def states(self, snapshot: tuple[list[Tensor], list[int]] | None = None) -> list[CandidateState]:
        """Every slot's candidate in its own model's terms (now, or as in `snapshot`)."""
        host, steps = snapshot if snapshot is not None else self.snapshot()
        return [self.net.extract(s, host[2], host[3], steps[s], flat=host[0], stats=host[1]) for s in range(self.k)]

    def _autocast(self, cache: bool = True) -> ContextManager:
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.net.device.type, dtype=torch.bfloat16, cache_enabled=cache)

    def train_step(self, x: Tensor, y: Tensor, active: list[bool] | Tensor) -> Tensor:
        """One Adam step of the active slots; returns (k, 2) [mean batch loss, correct] (no sync).
        `active`: host flags, or a device (k,) bool tensor (then between FlatAdam's begin_epoch
        and end_epoch; the BN statistics are always guarded, as the host cannot see which run)."""
        if isinstance(active, Tensor):
            self.adam.prepare_device(active)
            guard = True
        else:
            self.adam.prepare(active)
            guard = not all(active)
        if self.use_graphs:
            return self._replay(x, y)
        return self._step(x, y, guard_stats=guard)

    def _step(self, x: Tensor, y: Tensor, guard_stats: bool, cache: bool = True) -> Tensor:
        net = self.net
        saved = net.stats.clone() if guard_stats else None
        net.grad.zero_()
        with self._autocast(cache):
            net.cast_weights(torch.bfloat16 if self.amp else None)  # one cast of the weights a step
            logits = net(x)
            net.cast_weights(None)
        losses = _slot_losses(logits, y).mean(0)
        losses.sum().backward()
        self.adam.apply()
        with torch.no_grad():
            if saved is not None:  # frozen slots keep their BN statistics, as if they had not run
                live = self.adam.slot_scalars[0][net.slot_of_stat] > 0
                torch.where(live, net.stats, saved, out=net.stats)
            hits = (logits.argmax(dim=2) == y[:, None]).sum(0)
            return torch.stack([losses.detach(), hits.float()], 1)

    def _replay(self, x: Tensor, y: Tensor) -> Tensor:
        """The train step from a CUDA graph recorded once per batch size."""
        if len(y) not in self.graphs:
            self.graphs[len(y)] = self._capture(x, y)
        graph, static_x, static_y, out = self.graphs[len(y)]
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
        return out

    def _capture(self, x: Tensor, y: Tensor) -> tuple:
        """Record the step; the warm-up steps it needs are undone, so training is unaffected."""
        static_x, static_y = x.clone(), y.clone()
        buffers = (self.net.flat, self.net.stats, self.adam.exp_avg, self.adam.exp_avg_sq)
        snapshot = [b.clone() for b in buffers]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP):
                self._step(static_x, static_y, guard_stats=True, cache=False)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):  # other searches' threads go on
            out = self._step(static_x, static_y, guard_stats=True, cache=False)
        with torch.no_grad():
            for buf, saved in zip(buffers, snapshot):
                buf.copy_(saved)
        self.stats.graphs += 1
        return graph, static_x, static_y, out

    @torch.no_grad()
    def validate(self, x: Tensor, y: Tensor, batch: int) -> Tensor:
        """(k, 2) [loss sum, correct] over the validation set, BN in eval mode."""
        self.net.training = False
        totals = torch.zeros(self.k, 2, device=x.device, dtype=self.net.flat.dtype)
        self.net.cast_weights(torch.bfloat16 if self.amp else None)
        try:
            for start in range(0, len(y), batch):
                xb, yb = x[start : start + batch], y[start : start + batch]
                with self._autocast():
                    logits = self.net(xb)
                hits = (logits.argmax(dim=2) == yb[:, None]).sum(0)
                totals += torch.stack([_slot_losses(logits, yb).sum(0), hits.float()], 1)
        finally:
            self.net.training = True
            self.net.cast_weights(None)
        return totals


@torch.no_grad()
def _decay(net: StackedCNN, cands: list[_Candidate]) -> Tensor:
    """Per-element Adam weight decay of the union: 2 x lambda of the candidate parameter each
    position belongs to (the gradient of lambda x w^2), as train_proxy's adam_groups."""
    decay = torch.zeros_like(net.flat)
    for s in net.slotted.values():
        if s.stat:
            continue
        for c, cand in enumerate(cands):
            src = s.sources[c]
            if src and cand.l2.get(src):
                own = cand.state.params[src]
                net._block(net.view(s, decay), s, c, torch.full_like(own, 2.0 * cand.l2[src]))
    return decay


def _slot_losses(logits: Tensor, y: Tensor) -> Tensor:
    """(B, k) cross-entropy of every slot's logits against the same labels, at least in float32."""
    k = logits.shape[1]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits.transpose(1, 2), y[:, None].expand(-1, k), reduction="none")


# ----- training a chunk of candidates ---------------------------------------------------------------


@dataclass(frozen=True)
class _ChunkWork:
    """What every chunk of a step trains with: the task, the step's data and seed, the options
    and counters, and the search's callbacks (stop request, epoch progress, a finished candidate)."""

    task: object
    data: ImageData
    data_seed: int
    opts: BatchedOptions
    stats: BatchedStats
    should_stop: StopFn
    on_epoch: EpochFn
    finish: Callable


class _ChunkTrainer:
    """Trains a chunk of candidates epoch by epoch, applying the stop rules to each one."""

    def __init__(self, work: _ChunkWork, cands: list[_Candidate]) -> None:
        self.task, self.cands, self.data, self.data_seed = work.task, cands, work.data, work.data_seed
        self.cfg: ProxyTrainConfig = work.task.train_cfg
        self.opts, self.stats = work.opts, work.stats
        self.should_stop, self.on_epoch, self.finish = work.should_stop, work.on_epoch, work.finish
        self.union: _Union | None = None
        self.members: list[_Candidate] = cands
        self.saved: tuple | None = None  # (host snapshot, epoch) at the start of the current epoch

    def run(self) -> None:
        """One union for the whole chunk: a finished candidate keeps its slot, frozen (its weights,
        moments and BN statistics never change again), so the union is built, and its CUDA graph
        captured, once per chunk rather than each time a candidate stops."""
        with _union_errors():
            self.union = _Union(self.cands, self.task, self.opts, self.stats)
        for epoch in range(self.cands[0].next_epoch, self.cfg.epochs + 1):
            if all(c.result is not None for c in self.cands):
                return
            with _union_errors():
                self.saved = (self.union.snapshot(), epoch)
            self._epoch(epoch)

    def requeue(self) -> list[_Candidate]:
        """After an OOM mid-epoch: the unfinished members, reset to their state at the start of
        that epoch (weights, moments, step counts, BN statistics; their history and best so far
        are that moment's too, as epoch rows are only added at an epoch's end), ready to train
        again in a smaller chunk."""
        left = [c for c in self.cands if c.result is None]
        if self.saved is None or self.union is None:  # the union was never built: as they came
            return left
        (host, steps), epoch = self.saved
        for slot, cand in enumerate(self.cands):
            if cand.result is None:
                cand.state = self.union.net.extract(slot, host[2], host[3], steps[slot], flat=host[0], stats=host[1])
                cand.next_epoch = epoch
        return left

    def _epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        train = self._train_pass(epoch)
        n_val = len(self.data.y_val)
        batch = self.opts.val_batch or max(MIN_VAL_BATCH, val_batch(self.data.x_val.device) // len(self.members))
        with _union_errors():
            val = self.union.validate(self.data.x_val, self.data.y_val, batch).tolist()
        seconds = time.perf_counter() - t0
        for slot, cand in enumerate(self.members):
            if cand.result is not None:  # its loss went NaN during the pass
                continue
            val_loss, val_acc = val[slot][0] / n_val, val[slot][1] / n_val
            stats = train[slot].stats(val_loss, val_acc)
            if not stats.finite:  # this epoch did not complete: scored from the earlier ones
                self.finish(cand, *_nan(cand))
                continue
            row = stats.row(epoch, self.cfg.lr, seconds)
            cand.history.append(row)
            cand.best.update(epoch, val_acc)
            self.on_epoch(cand.idx, row)
            reason = stop_reason(self.cfg, epoch, stats, cand.best.epoch)
            if reason is not None:  # never NAN: the stats are finite
                self.finish(cand, CandidateStatus.OK, reason)

    def _train_pass(self, epoch: int) -> list[Running]:
        """Every member trains on the epoch's batches until its running accuracy passes the
        threshold (then it is frozen for the rest of the epoch) or its loss is not finite.

        The stop rules' running values live on the device (_DeviceRunning), so a batch makes no
        host sync: the host reads whether any member is still training every ALL_DONE_EVERY
        batches (a batch with none is a no-op: nothing is updated), and everything else once, at
        the end of the pass."""
        union, data = self.union, self.data
        dev = data.x_train.device
        batches = epoch_batches(len(data.y_train), self.cfg.batch_size, self.data_seed, epoch, self.cfg.max_batches)
        order = torch.cat(batches).to(dev, non_blocking=True)
        running = _DeviceRunning([c.result is None for c in self.members], self.cfg, union.net.flat.dtype, dev)
        with _union_errors():
            union.adam.begin_epoch(len(batches))
        for b, idx in enumerate(order.split([len(b) for b in batches])):
            if b % ALL_DONE_EVERY == 0 and not running.any_active():  # on to validation, as train_proxy
                break
            if self.should_stop():
                raise _Stopped()
            with _union_errors():
                x = data.x_train.index_select(0, idx).contiguous(memory_format=torch.channels_last)
                out = union.train_step(x, data.y_train.index_select(0, idx), running.active)
                running.add(out, len(idx))
        with _union_errors():
            host, taken = running.read(union.adam.taken)
        union.adam.end_epoch(taken)
        for slot, run in enumerate(host):
            if run is None and self.members[slot].result is None:
                self.finish(self.members[slot], *_nan(self.members[slot]))
        return host


ALL_DONE_EVERY = 8  # batches between the host reads of "is any member still training?"


class _DeviceRunning:
    """The per-slot `Running` values (EMAs of batch loss and accuracy, sums) as float64 device
    tensors: the same IEEE double operations as Running's Python floats, so the same numbers,
    with no host sync per batch. A slot stops training (its `active` flag, read by FlatAdam on
    the device) at a non-finite loss or once its running accuracy passes the threshold."""

    def __init__(self, live: list[bool], cfg: ProxyTrainConfig, dtype: torch.dtype, dev: torch.device) -> None:
        k = len(live)
        self.momentum, self.threshold = cfg.momentum, cfg.train_acc_stop
        self.active = torch.tensor(live, device=dev)
        self.nan = torch.zeros(k, dtype=torch.bool, device=dev)
        # rows: loss EMA, accuracy EMA, loss sum, hits, images seen
        self.values = torch.zeros(5, k, dtype=torch.float64, device=dev)

    def any_active(self) -> bool:
        return bool(self.active.any())

    def add(self, out: Tensor, n: int) -> None:
        """One batch's (k, 2) [mean loss, correct] for the slots that trained on it."""
        m = self.momentum
        loss, hits = out[:, 0].double(), out[:, 1].double()
        finite = torch.isfinite(loss)
        self.nan |= self.active & ~finite
        live = self.active & finite
        ema_loss, ema_acc, loss_sum, hit_sum, seen = self.values
        first = seen == 0
        acc = hits / n
        new = torch.stack(
            [
                torch.where(first, loss, m * ema_loss + (1 - m) * loss),
                torch.where(first, acc, m * ema_acc + (1 - m) * acc),
                loss_sum + loss * n,
                hit_sum + hits,
                seen + n,
            ]
        )
        torch.where(live, new, self.values, out=self.values)
        self.active = live & ~(self.values[1] > self.threshold)

    def read(self, taken: Tensor) -> tuple[list[Running | None], list[int]]:
        """The epoch's Running per slot (None: its loss went non-finite) and the Adam steps each
        slot took (FlatAdam's `taken`), in one host read."""
        cols = torch.cat([self.values, self.nan[None].double(), taken[None].double()]).T.tolist()
        out: list[Running | None] = []
        steps: list[int] = []
        for ema_loss, ema_acc, loss_sum, hits, seen, nan, took in cols:
            steps.append(int(took))
            if nan:
                out.append(None)
                continue
            run = Running(self.momentum)
            if seen:
                run.loss, run.acc = ema_loss, ema_acc
            run.loss_sum, run.hits, run.seen = loss_sum, hits, int(seen)
            out.append(run)
        return out, steps


def _nan(cand: _Candidate) -> tuple[str, str, str]:
    """finish()'s (status, reason, error) for a NaN/inf loss, as train_proxy decides it."""
    status, error = nan_outcome(len(cand.history))
    return status, NAN, error


# ----- the evaluator ----------------------------------------------------------------------------------


def evaluate_batched(
    work: StepJob, *, options: BatchedOptions | None = None, stats: BatchedStats | None = None
) -> list[CandidateRecord]:
    """Train and score the step's candidates together; records in job order, as evaluate_single's.

    On a stop request, every candidate not finished gets a STOPPED record (the search then
    discards the step).
    """
    task, step, jobs, step_seed = work.task, work.step, work.jobs, work.step_seed
    should_stop, on_epoch, on_result = work.should_stop, work.on_epoch, work.on_result
    opts = options or BatchedOptions()
    stats = stats if stats is not None else BatchedStats()
    dev = torch.device(task.device)
    t0 = time.time()
    records: dict[int, CandidateRecord] = {}

    def finish(cand: _Candidate, status: str, reason: str, error: str = "") -> None:
        cand.result = finished_result(status, reason, cand.best, list(cand.history), time.time() - t0, error)
        records[cand.idx] = make_record(step, cand.job, cand.result, cand.cost, task.score(cand.result, cand.cost))
        on_result(records[cand.idx])

    cands = _build_all(task, step, jobs, step_seed, records, on_result)
    data = task.data.to(dev)
    data = _channels_last(data)
    try:
        with _cudnn_benchmark(opts.cudnn_benchmark and dev.type == "cuda"):
            _train_in_chunks(_ChunkWork(task, data, step_seed, opts, stats, should_stop, on_epoch, finish), cands)
    except _Stopped:
        pass
    for cand in cands:
        if cand.result is None:
            finish(cand, CandidateStatus.STOPPED, USER_STOP)
    if dev.type == "cuda":  # the process's peak: the counters are process-wide, so they are not
        stats.peak_bytes = max(stats.peak_bytes, torch.cuda.max_memory_allocated(dev))  # reset here
    return [records[job[0]] for job in jobs]


def _build_all(
    task, step: int, jobs: list[Job], step_seed: int, records: dict, on_result: ResultFn
) -> list[_Candidate]:
    """Each candidate's own model, built as the single evaluator builds it (same seed), as state."""
    cands = []
    for job in jobs:
        model, cost, failed = build_candidate(task, step, job, step_seed)
        if failed is not None:
            records[job[0]] = failed
            on_result(failed)
            continue
        cands.append(_Candidate(job, candidate_state(model), cost, l2_coefficients(model, task.train_cfg)))
    return cands


def _channels_last(data: ImageData) -> ImageData:
    """The images in channels_last once per step (a no-op copy when they already are)."""
    fmt = torch.channels_last
    return ImageData(
        data.name,
        data.x_train.contiguous(memory_format=fmt),
        data.y_train,
        data.x_val.contiguous(memory_format=fmt),
        data.y_val,
        data.num_classes,
        data.in_channels,
        data.input_size,
        list(data.notes),
    )


def _train_in_chunks(work: _ChunkWork, cands: list[_Candidate]) -> None:
    """Chunks of at most `opts.chunk` candidates, one after another; on CUDA a chunk that does
    not fit (a one-batch probe runs out of memory) is halved until it does, and a chunk that runs
    out of memory later anyway is re-queued, its unfinished members from their state at the start
    of that epoch, at half the size (never failed: that would leave the step to the survivors)."""
    task, opts, stats, finish = work.task, work.opts, work.stats, work.finish
    size = opts.chunk if opts.chunk > 0 else auto_chunk(torch.device(task.device), len(cands))
    queue = list(cands)
    while queue:
        if work.should_stop():
            raise _Stopped()
        group = _next_group(queue, size)
        try:
            fits = size <= 1 or _fits(task, group, work.data, work.data_seed, opts, stats)
        except _UnionError as exc:  # the probe broke for another reason: these candidates fail
            _fail(group, finish, str(exc))
            queue = queue[len(group) :]
            continue
        if not fits:
            size //= 2
            stats.oom_halvings += 1
            continue
        stats.chunks.append(len(group))
        trainer = _ChunkTrainer(work, group)
        queue = queue[len(group) :]
        try:
            trainer.run()
        except _UnionError as exc:  # as in train_proxy: the candidates fail, the search goes on
            if exc.oom and len(group) > 1:
                left = trainer.requeue()
                queue = left + queue
                size = max(1, len(group) // 2)
                stats.oom_halvings += 1
                stats.requeued += len(left)
            else:
                _fail(group, finish, str(exc))
        finally:
            trainer.union = None
            _release(task)


def _next_group(queue: list[_Candidate], size: int) -> list[_Candidate]:
    """Up to `size` candidates from the front that start at the same epoch (re-queued ones go
    on from theirs; a union trains its members in step)."""
    first = queue[0].next_epoch
    group = []
    for cand in queue[:size]:
        if cand.next_epoch != first:
            break
        group.append(cand)
    return group


def _fail(group: list[_Candidate], finish: Callable, error: str) -> None:
    for cand in group:
        if cand.result is None:
            finish(cand, CandidateStatus.FAILED, BUILD_FAILED, error)


def _release(task) -> None:
    """Give a dropped union's memory back at once (CUDA keeps freed blocks cached otherwise)."""
    if torch.device(task.device).type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()


def auto_chunk(device: torch.device, k: int) -> int:
    """Candidates per union when not set. CUDA: all k (a GPU is starved by one small candidate).
    CPU: 1. bench/bench_evaluators.py measures a candidate step per slot count against the
    one-at-a-time evaluator (figures in the README): on a CPU one slot wins, since a CPU has no
    launch overhead to amortise and k-wide activations fall out of cache; the one-slot gain is
    the channels_last layout, which oneDNN's depthwise and pointwise convs run faster."""
    return max(1, k) if device.type == "cuda" else 1


def _fits(
    task, group: list[_Candidate], data: ImageData, data_seed: int, opts: BatchedOptions, stats: BatchedStats
) -> bool:
    """CUDA only: can this chunk take a full training step and a validation batch? (CPU: yes).
    An OOM-like error (is_oom_like) says no; any other error is the chunk's own (_UnionError)."""
    if not _probes(task):
        return True
    try:
        _probe(task, group, data, data_seed, opts, stats)
        fits = True
    except Exception as exc:  # noqa: BLE001 - sorted into "does not fit" and "is broken"
        if not is_oom_like(exc):
            raise _UnionError(one_line(exc, typed=True, limit=ERROR_CHARS)) from exc
        fits = False
    gc.collect()  # the failed probe's tensors are gone only once its traceback is
    torch.cuda.empty_cache()
    return fits


def _probes(task) -> bool:
    """Whether chunks are probed before training: on CUDA, where memory is what limits them."""
    return torch.device(task.device).type == "cuda"


def _probe(
    task, group: list[_Candidate], data: ImageData, data_seed: int, opts: BatchedOptions, stats: BatchedStats
) -> None:
    """One step on the epoch's largest batch and one validation batch, on a throwaway union; with
    CUDA graphs on, the step is captured as training will capture it, so the graph's private
    memory pool counts too."""
    dev = torch.device(task.device)
    probe_stats = BatchedStats()  # the probe's graphs are not the training's
    union = _Union(group, task, opts, probe_stats)
    batches = epoch_batches(len(data.y_train), task.train_cfg.batch_size, data_seed, 1)
    idx = max(batches, key=len).to(dev)
    x = data.x_train[idx].contiguous(memory_format=torch.channels_last)
    union.train_step(x, data.y_train[idx], [True] * len(group))
    batch = opts.val_batch or max(MIN_VAL_BATCH, val_batch(dev) // len(group))
    union.validate(data.x_val[:batch], data.y_val[:batch], batch)
    torch.cuda.synchronize(dev)


_benchmark_lock = threading.Lock()
_benchmark_users = [0, False]  # evaluations that asked for cuDNN autotuning; the flag before the first


@contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    """cuDNN autotuning while at least one evaluation asks for it. The flag is process-wide, and
    searches run in threads (the app server): counted under a lock, so one search ending does not
    switch it off under another, and the process's own setting comes back after the last."""
    if not on:
        yield
        return
    with _benchmark_lock:
        if _benchmark_users[0] == 0:
            _benchmark_users[1] = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = True
        _benchmark_users[0] += 1
    try:
        yield
    finally:
        with _benchmark_lock:
            _benchmark_users[0] -= 1
            if _benchmark_users[0] == 0:
                torch.backends.cudnn.benchmark = _benchmark_users[1]


__all__ = [
    "evaluate_batched",
    "BatchedOptions",
    "BatchedStats",
    "auto_chunk",
    "StackedCNN",
    "CandidateState",
    "candidate_state",
    "FlatAdam",
]  # the last four: for tests and benchmarks
