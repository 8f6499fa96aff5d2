"""The ray evaluator: a step's candidates trained as Ray tasks, on this machine or a cluster.

Why: a step's k candidates are independent, so k workers (GPUs, cores, machines) give close to
k-fold speed. The shrink loop and the store stay in the driver (this process); each Ray task
trains one candidate (or a `ray_chunk` of them) and sends back only its CandidateRecords.

What goes where. The proxy data goes into the object store once per run (`prepare_ray`), and a
worker process deserialises it once per run (`_WORKER_TASKS`), not once per task. A task carries
the settings (a dict), the step seed and its jobs (genotypes); it builds each candidate from
`init_seed(step_seed, idx)` as every evaluator does, so a CPU task trained by `single` gives the
same record, bit for bit, as the single evaluator in the driver. A chunk (or a GPU task) is
trained by `batched`. Ray moves these objects between our own processes with its own
serialisation (pickle): the cluster is one trust domain; files from users are still never
unpickled.

Faults. A worker that dies mid-candidate is retried by Ray (`MAX_RETRIES`); the candidate
trains again from its seed, and the driver keeps exactly one record per job index, so the step
commits all k, none twice. A stop request cancels the running tasks (KeyboardInterrupt in the
worker, within a poll interval) and the step is not committed, as with any evaluator; a lost
driver loses the step in progress and `resume` goes on from the store as always.

Sharing. Searches of one process (the app server) share one cluster connection and a limit
(`SearchSlots`): at most AUTOSHRINK_RAY_MAX_SEARCHES of them have tasks on the cluster at once
(the others wait at a step boundary, still stoppable), and one search asks for at most
AUTOSHRINK_RAY_CPUS_PER_SEARCH CPUs at a time, so a class of demos keeps the server usable.
"""

from __future__ import annotations

import importlib.util
import math
import os
import socket
import sys
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from core.errors import ConfigError, UserError, one_line
from core.search.candidates import Job, StepJob, StopFn
from core.search.config import SearchConfig
from core.store.runs import CandidateRecord

ADDRESS_ENV = "AUTOSHRINK_RAY_ADDRESS"  # join this cluster when --ray-address is not given
LOCAL_CPUS_ENV = "AUTOSHRINK_RAY_CPUS"  # CPUs of the local cluster this process starts
MAX_SEARCHES_ENV = "AUTOSHRINK_RAY_MAX_SEARCHES"  # searches with tasks on the cluster at once
CPUS_PER_SEARCH_ENV = "AUTOSHRINK_RAY_CPUS_PER_SEARCH"  # CPUs one search's tasks may hold at once
DEFAULT_MAX_SEARCHES = 4
MAX_RETRIES = 3  # a task whose worker dies is trained again from its seed, up to this often
POLL_S = 0.25  # how often the driver looks at stop requests while tasks run
CONNECT_TIMEOUT_S = 25.0  # ray.init against an address where no cluster answers retries for minutes
PROBE_TIMEOUT_S = 5.0  # a TCP connect to the cluster's address before any run row exists
PREFLIGHT_TIMEOUT_S = 120.0  # the GPU preflight task (a fresh worker imports torch)
CANCEL_GRACE_S = 5.0  # after a cancel, how long running tasks get before their workers are killed
ROOT = Path(__file__).resolve().parents[3]  # the project: shipped to a remote cluster's workers
SHIP_EXCLUDES = [".git", "runs", "data", "shared", "tests", "bench", "**/__pycache__", "*.db"]


class RayEvaluatorError(UserError, RuntimeError):
    """Ray is missing, the cluster cannot be reached, or a candidate's worker kept dying."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayEvaluatorError("the ray evaluator needs Ray: pip install the ray pin in requirements.txt") from None
    return ray


# ----- the cluster -------------------------------------------------------------------------------
_connect_lock = threading.Lock()
_connected_to: list[str] = []  # the address this process joined ('local' for the one it started)


def connect(address: str = "") -> dict:
    """Join the cluster at `address` (or $AUTOSHRINK_RAY_ADDRESS), or start a local one sized to
    this machine; once per process (Ray's connection is process-wide), then shared."""
    ray = _ray()
    wanted = address or os.environ.get(ADDRESS_ENV, "")
    with _connect_lock:
        if ray.is_initialized():
            if wanted and _connected_to and _connected_to[0] != wanted:
                raise RayEvaluatorError(
                    f"this process is already on Ray cluster {_connected_to[0]}; "
                    f"one cluster per process, so {wanted} cannot be joined here"
                )
            return cluster_info()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports to ray.io
        if not wanted:  # a private cluster needs no token; a joined one keeps the mode it was started with
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        try:
            _init_in_owner_thread(wanted)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise RayEvaluatorError(
                f"cannot reach Ray cluster {wanted or '(local)'}: {one_line(exc, typed=False)}"
            ) from None
        _connected_to[:] = [wanted or "local"]
    return cluster_info()


def check_address(address: str = "") -> None:
    """Refuse in one line, within PROBE_TIMEOUT_S, an address where nothing answers (ray.init
    itself retries for minutes there). Cheap and connection-free: a TCP connect to HOST:PORT.
    'auto' (a cluster started here with `ray start`) and the cluster this process is on pass."""
    wanted = address or os.environ.get(ADDRESS_ENV, "")
    if not wanted or wanted == "auto" or (_connected_to and _connected_to[0] == wanted):
        return
    host, port = _host_port(wanted)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__).lower()
        raise RayEvaluatorError(
            f"cannot reach Ray cluster {wanted}: nothing answers at {host}:{port} ({why}); "
            f"start it with `ray start --head` or fix --ray-address"
        ) from None


def _host_port(address: str) -> tuple[str, int]:
    """HOST:PORT of a Ray address ('ray://host:port' for Ray Client, else the GCS's host:port)."""
    text = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayEvaluatorError(f"Ray address must be HOST:PORT (or 'auto'), not {address!r}")
    return host.strip("[]"), int(port)


_owner_stop = threading.Event()


def _init_in_owner_thread(address: str) -> None:
    """ray.init from a thread that lives as long as the connection: Ray ties the local cluster's
    GCS and raylet to the thread that started them (PR_SET_PDEATHSIG), and searches run in
    short-lived threads (the app's Runner, the CLI's Ctrl-C wrapper)."""
    ray = _ray()
    setup = {"worker_process_setup_hook": f"{__name__}.warm_worker"}  # torch imported before any task
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address:  # the cluster's nodes get the project's code; their Python packages must match ours
        kwargs.update(address=address, runtime_env={"working_dir": str(ROOT), "excludes": SHIP_EXCLUDES, **setup})
    else:  # "local": a private cluster, never one another process started on this machine
        kwargs.update(
            address="local", num_cpus=_local_cpus(), runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}, **setup}
        )
    ready, failure, abandoned = threading.Event(), [], threading.Event()
    _owner_stop.clear()

    def owner() -> None:
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)
        ready.set()
        if not failure and abandoned.is_set():  # joined after the caller gave up: leave again
            ray.shutdown()
            return
        if not failure:
            _owner_stop.wait()

    threading.Thread(target=owner, name="ray-owner", daemon=True).start()
    if not ready.wait(CONNECT_TIMEOUT_S):
        abandoned.set()
        raise TimeoutError(f"no Ray cluster answered within {CONNECT_TIMEOUT_S:g} s")
    if failure:
        raise failure[0]


def warm_worker() -> None:
    """Runs in every new worker before its first task: import torch and the trainers now, so a
    cancel never lands in the middle of `import torch` (which leaves the worker broken)."""
    import core.search.evaluators.batched  # noqa: F401
    import core.search.evaluators.single  # noqa: F401


def disconnect() -> None:
    """Leave the cluster (and stop the local one this process started)."""
    ray = _ray()
    with _connect_lock:
        if ray.is_initialized():
            ray.shutdown()
        _owner_stop.set()
        _connected_to.clear()
        _remote_fn.clear()


def _local_cpus() -> int:
    value = os.environ.get(LOCAL_CPUS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def cluster_info() -> dict:
    """Nodes, CPUs and GPUs of the cluster this process is on ({} when it is on none)."""
    ray = _ray()
    if not ray.is_initialized():
        return {}
    res = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {
        "address": _connected_to[0] if _connected_to else "attached",
        "nodes": len(nodes),
        "cpus": res.get("CPU", 0.0),
        "gpus": res.get("GPU", 0.0),
    }


def describe_cluster(info: dict) -> str:
    """One line for logs and pages: 'ray local: 1 node, 2 CPUs, 0 GPUs'."""
    if not info:
        return "no Ray cluster"
    n = info.get("nodes", 0)
    return (
        f"ray {info.get('address', '?')}: {n} node{'' if n == 1 else 's'}, "
        f"{info.get('cpus', 0):g} CPUs, {info.get('gpus', 0):g} GPUs"
    )


def cluster_status() -> str:
    """For a page: the cluster this process is on, or what the first ray search will start or join.
    Ray is not imported for this (a second of CPU on every server's first Search page): a process
    that never imported it is on no cluster."""
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed: the ray evaluator is unavailable"
    info = cluster_info() if "ray" in sys.modules else {}
    limit = f"at most {SLOTS.limit} searches on it at once, {SLOTS.active} now"
    if info:
        return f"{describe_cluster(info)}; {limit}"
    where = os.environ.get(ADDRESS_ENV) or f"a local cluster of {_local_cpus()} CPUs"
    return f"no Ray cluster yet: the first ray search joins {where}; {limit}"


# The evaluator's own state per proxy task (not stored on the task): what prepare_ray set up.
# Weak keys: a run's entry goes with its task.
_RUNS: weakref.WeakKeyDictionary[object, RayRun] = weakref.WeakKeyDictionary()


# ----- many searches, one cluster ----------------------------------------------------------------
class SearchSlots:
    """At most `limit` searches of this process evaluate on the cluster at once; a waiting search
    polls its stop request, so it can be stopped while it waits."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._cond = threading.Condition()
        self.active = 0
        self.peak = 0

    @contextmanager
    def slot(self, should_stop: StopFn, on_wait: Callable[[], None] = lambda: None) -> Iterator[bool]:
        """Yields True with a slot held, or False if a stop came while waiting for one."""
        with self._cond:
            if self.active >= self.limit:
                on_wait()
            while self.active >= self.limit:
                if should_stop():
                    yield False
                    return
                self._cond.wait(POLL_S)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield True
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify()


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {os.environ.get(name)!r}") from None
    return value if value > 0 else default


SLOTS = SearchSlots(int(_env_number(MAX_SEARCHES_ENV, DEFAULT_MAX_SEARCHES)))


# ----- one run's setup in the driver ----------------------------------------------------------------
@dataclass
class RayRun:
    """What the driver keeps for a run: the data in the object store and how tasks are shaped."""

    data_ref: object  # ray.ObjectRef of the proxy ImageData / Corpus (CPU tensors)
    task_type: type  # the proxy task's class (shipped by reference): the worker builds one
    cfg: dict  # the settings the worker rebuilds its task from
    cluster: dict
    num_cpus: float
    num_gpus: float
    threads: int  # torch threads in each task
    chunk: int
    max_inflight: int  # tasks of this search on the cluster at once
    log: Callable[[str], None]  # the run's log


def check_startable(cfg: SearchConfig) -> None:
    """Before any run row exists: an address where no cluster answers, and a GPU request on a
    cluster without GPUs, are refused in one line. A GPU request joins the cluster now (the
    search would join it a moment later anyway) to count its GPUs."""
    check_address(cfg.ray_address)
    if cfg.ray_gpus_per_candidate > 0:
        _check_gpus(cfg, connect(cfg.ray_address))


def _check_gpus(cfg: SearchConfig, info: dict) -> None:
    if info.get("gpus", 0) <= 0:
        raise RayEvaluatorError(
            f"--ray-gpus-per-candidate {cfg.ray_gpus_per_candidate:g} asks for GPUs, but {describe_cluster(info)}"
        )


def task_chunk(cfg: SearchConfig) -> int:
    """Candidates per task: as set, else (0) a whole CNN step per task on a GPU (its one union keeps
    the GPU busy; a fresh worker per GPU task costs a few seconds, paid once a step), and one per
    task otherwise (RNN candidates train one after another even inside a task)."""
    if cfg.ray_chunk > 0:
        return cfg.ray_chunk
    return cfg.k if cfg.ray_gpus_per_candidate > 0 and cfg.task == "cnn" else 1


def prepare_ray(task, log: Callable[[str], None]) -> dict:
    """Connect, check the GPU workers once (preflight), put the proxy data into the object store
    (once per run), and size the tasks."""
    ray = _ray()
    cfg: SearchConfig = task.cfg
    check_address(cfg.ray_address)
    info = connect(cfg.ray_address)
    chunk = task_chunk(cfg)
    gpus = cfg.ray_gpus_per_candidate
    if gpus > 0:
        _check_gpus(cfg, info)
    num_gpus = 0.0 if gpus <= 0 else min(1.0, gpus * chunk)
    if num_gpus > 0:
        log(preflight_cuda(num_gpus))
    data = task.worker_data()
    per_search = _env_number(CPUS_PER_SEARCH_ENV, info.get("cpus", 1.0) or 1.0)
    run = RayRun(
        data_ref=ray.put(data),
        task_type=type(task),
        cfg=cfg.to_dict(),
        cluster=info,
        num_cpus=cfg.ray_cpus_per_candidate,
        num_gpus=num_gpus,
        threads=threads_for(cfg.ray_cpus_per_candidate),
        chunk=chunk,
        max_inflight=max(1, int(per_search // cfg.ray_cpus_per_candidate)),
        log=log,
    )
    _RUNS[task] = run
    log(
        f"evaluator ray on {describe_cluster(info)}; tasks of {chunk} candidate(s), "
        f"{run.num_cpus:g} CPU ({run.threads} torch thread(s)) and {run.num_gpus:g} GPU each, "
        f"at most {run.max_inflight} at once for this search"
    )
    return info


def run_of(task) -> RayRun | None:
    """The Ray side of `task`'s run (prepare_ray made it), or None before it."""
    return _RUNS.get(task)


def preflight_cuda(num_gpus: float) -> str:
    """One task shaped like the search's GPU tasks: does torch on a GPU worker see CUDA? A GPU node
    whose torch is a CPU build would otherwise fail every candidate deep inside a task."""
    ray = _ray()
    ref = remote_for(cuda_report, gpu=True).options(num_cpus=0, num_gpus=num_gpus).remote()
    try:
        report = ray.get(ref, timeout=PREFLIGHT_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise RayEvaluatorError(
            f"no GPU worker started within {PREFLIGHT_TIMEOUT_S:g} s for the CUDA check "
            f"(are the cluster's GPUs held by other jobs?)"
        ) from None
    if not report["cuda"]:
        raise RayEvaluatorError(
            f"the cluster's GPU worker on {report['host']} has torch {report['torch']} without "
            f"CUDA (torch.cuda.is_available() is False); install a CUDA build of torch there"
        )
    return f"CUDA check: {report['host']} GPU {report['visible']}: {report['name']} (torch {report['torch']})"


def cuda_report() -> dict:
    """In a GPU worker: what its torch sees (the preflight's payload)."""
    cuda = torch.cuda.is_available()
    return {
        "host": socket.gethostname(),
        "torch": torch.__version__,
        "cuda": cuda,
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "name": torch.cuda.get_device_name(0) if cuda else "",
    }


# ----- the driver's side of a step ---------------------------------------------------------------------
def evaluate_ray(work: StepJob) -> list[CandidateRecord]:
    """Train `jobs` as Ray tasks; records come back in job order (fewer than k if stopped).

    Epoch rows are reported when a candidate's record arrives (its history), not live."""
    task, jobs, should_stop = work.task, work.jobs, work.should_stop
    if task not in _RUNS:
        prepare_ray(task, lambda msg: None)
    run = _RUNS[task]
    chunks = [jobs[i : i + run.chunk] for i in range(0, len(jobs), run.chunk)]
    with SLOTS.slot(should_stop, lambda: run.log("waiting for a free Ray slot (other searches hold them)")) as ok:
        if not ok:
            return []
        done = _run_chunks(run, work, chunks)
    return [done[job[0]] for job in jobs if job[0] in done]


def _run_chunks(run: RayRun, work: StepJob, chunks: list[list[Job]]) -> dict[int, CandidateRecord]:
    ray = _ray()
    step, step_seed, should_stop, on_epoch, on_result = (
        work.step,
        work.step_seed,
        work.should_stop,
        work.on_epoch,
        work.on_result,
    )
    remote = remote_for(train_chunk, gpu=run.num_gpus > 0).options(num_cpus=run.num_cpus, num_gpus=run.num_gpus)
    todo, pending, done = list(chunks), {}, {}
    try:
        while todo or pending:
            while todo and len(pending) < run.max_inflight:
                chunk = todo.pop(0)
                ref = remote.remote(
                    run.task_type, run.cfg, [run.data_ref], step, chunk, step_seed, run.threads, run.num_gpus > 0
                )
                pending[ref] = chunk
            if should_stop():
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                chunk = pending.pop(ref)
                for rec in _get(ref, chunk):
                    if rec.idx in done:  # one record per job, whatever Ray retried
                        continue
                    done[rec.idx] = rec
                    for row in rec.history:
                        on_epoch(rec.idx, row)
                    on_result(rec)
    finally:  # a stop, or an error of one task: the others must not train on for nobody
        if pending:
            _cancel(list(pending))
    return done


def _get(ref, chunk: list[Job]) -> list[CandidateRecord]:
    ray = _ray()
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        raise exc.as_instanceof_cause() from None  # the trainer's own error, as in the driver
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
        idx = ", ".join(str(j[0]) for j in chunk)
        raise RayEvaluatorError(
            f"candidate(s) {idx}: Ray worker lost {MAX_RETRIES + 1} times "
            f"({type(exc).__name__}); resume the run to try again"
        ) from None


def _cancel(refs: list) -> None:
    """Interrupt running tasks (KeyboardInterrupt in the worker); kill the workers of any that
    do not end within CANCEL_GRACE_S, so the next step or run does not compete with them."""
    ray = _ray()
    for ref in refs:
        ray.cancel(ref, force=False)
    _, left = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
    for ref in left:
        ray.cancel(ref, force=True)


_remote_fn: dict = {}


def remote_for(fn: Callable, gpu: bool):
    """`fn` as a Ray remote function, made once per process (ray is imported only when used).

    GPU tasks get max_calls=1: CUDA reads CUDA_VISIBLE_DEVICES once per process, so a reused
    worker would stay on the GPU of its first task while Ray hands it another; a fresh worker per
    GPU task trains on, and reports, the GPU Ray gave it."""
    key = (fn.__module__, fn.__qualname__, gpu)
    if key not in _remote_fn:
        _remote_fn[key] = _ray().remote(max_retries=MAX_RETRIES, **({"max_calls": 1} if gpu else {}))(fn)
    return _remote_fn[key]


# ----- the worker's side --------------------------------------------------------------------------------
_WORKER_TASKS: dict[str, object] = {}  # data ref -> proxy task; a worker keeps the latest few runs
_KEEP_TASKS = 2


def train_chunk(
    task_type: type, cfg: dict, data_box: list, step: int, jobs: list[Job], step_seed: int, threads: int, use_cuda: bool
) -> list[CandidateRecord]:
    """In a Ray worker: train `jobs` with the local evaluator and label each record with the worker.

    `data_box` holds the data's ObjectRef inside a list so Ray does not fetch it for every task:
    the worker fetches it once per run and keeps the task built on it."""
    from core.search.evaluators.registry import evaluator_fn

    torch.set_num_threads(threads)
    task = _worker_task(task_type, cfg, data_box[0], use_cuda, len(jobs))
    records = evaluator_fn(task.evaluator)(StepJob(task, step, jobs, step_seed))
    label = worker_label(task.device)
    return [replace(r, worker=label) for r in records]


def _worker_task(task_type: type, cfg: dict, data_ref, use_cuda: bool, chunk: int):
    key = f"{data_ref.hex()}:{use_cuda}:{chunk > 1}"
    if key not in _WORKER_TASKS:
        from core.search.evaluators.registry import worker_evaluator

        settings = SearchConfig.from_dict(cfg)
        inner = worker_evaluator(settings.task, batched_fits=use_cuda or chunk > 1)
        device = torch.device("cuda" if use_cuda else "cpu")
        task = task_type(replace(settings, evaluator=inner), device, lambda msg: None, _ray().get(data_ref))
        while len(_WORKER_TASKS) >= _KEEP_TASKS:
            _WORKER_TASKS.pop(next(iter(_WORKER_TASKS)))
        _WORKER_TASKS[key] = task
    return _WORKER_TASKS[key]


def worker_label(device: torch.device) -> str:
    """Which node (and GPU) trained a candidate: 'host/1a2b3c4d' or 'host/1a2b3c4d gpu 0'."""
    ray = _ray()
    node = ray.get_runtime_context().get_node_id()[:8]
    gpus = [str(g) for g in ray.get_gpu_ids()] if device.type == "cuda" else []
    return f"{socket.gethostname()}/{node}" + (f" gpu {','.join(gpus)}" if gpus else "")


def threads_for(cpus_per_candidate: float) -> int:
    """Torch threads for one task: its whole CPUs, at least one (tasks must not oversubscribe)."""
    return max(1, int(math.floor(cpus_per_candidate)))
