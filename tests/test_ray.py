"""The ray evaluator: same answers as single, a killed worker retried, stops, records, sharing.

One local Ray instance (2 CPUs) serves the whole module; the settings are tiny digits ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import parent_pid, wait_until

ray = pytest.importorskip("ray", reason="ray is not installed (pip install the pin in requirements.txt)")

from core.cell.genotype import Genotype  # noqa: E402
from core.search.candidates import StepJob  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.evaluators import ray_eval  # noqa: E402
from core.search.evaluators.ray_eval import SearchSlots  # noqa: E402
from core.search.evaluators.single import evaluate_single  # noqa: E402
from core.search.loop import choose, create_run, run_search, step_candidates  # noqa: E402
from core.search.tasks import CNNProxyTask  # noqa: E402
from core.seeds import derive_seed  # noqa: E402
from core.store.runs import RunStatus, Store  # noqa: E402

TINY = dict(
    nodes=4,
    k=2,
    epochs=2,
    threads=1,
    per_class_train=30,  # stem 8 / width 4 crash torch here
    per_class_val=10,
    keep_fraction=0.0,
)
# Candidates of a few seconds, so that a kill or a stop lands mid-candidate: small batches make many
# steps (with bigger ones a warm worker trains this cell in about 0.3 s).
LONGER = dict(epochs=2, per_class_train=60, batch_size=8)
NEVER, NOP = (lambda: False), (lambda *a: None)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local cluster for the module, started the way a search starts it."""
    info = ray_eval.connect("")
    yield info
    ray_eval.disconnect()


def _comparable(rec) -> dict:
    """A record without what differs between two honest runs: timings and the worker label."""
    d = rec.__dict__.copy()
    d.pop("wall_s"), d.pop("worker")
    d["history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in rec.history]
    return d


def _step(**over):
    cfg = preset_config("cnn", "demo", **{**TINY, **over})
    task = CNNProxyTask(cfg, __import__("torch").device("cpu"), NOP)
    dense = Genotype.dense("cnn", cfg.nodes, cfg.seed)
    jobs = [(i, e, dense.without_edge(e)) for i, e in enumerate(step_candidates(dense, cfg.k, cfg.seed, 1))]
    return task, jobs, derive_seed(cfg.seed, 1)


@pytest.fixture(scope="module")
def single_records():
    task, jobs, seed = _step(evaluator="single", **LONGER)
    return evaluate_single(StepJob(task, 1, jobs, seed, NEVER, NOP, NOP))


def _my_workers(title: str = "ray::train_chunk") -> list[int]:
    """Ray worker processes of this test's own cluster (descendants of this process) running `title`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if not fh.read().split(b"\0")[0].decode(errors="replace").startswith(title):
                    continue
        except OSError:
            continue
        if _descends_from(int(pid), os.getpid()):
            found.append(int(pid))
    return found


def _descends_from(pid: int | None, ancestor: int) -> bool:
    while pid is not None and pid > 1:
        pid = parent_pid(pid)
        if pid == ancestor:
            return True
    return False


def test_the_local_cluster_is_sized_to_this_machine(cluster):
    assert cluster["nodes"] == 1 and cluster["cpus"] == os.cpu_count() and cluster["gpus"] == 0
    assert "1 node" in ray_eval.describe_cluster(cluster)
    assert ray_eval.cluster_status().startswith(ray_eval.describe_cluster(cluster))  # the Search page's caption


def test_the_search_page_caption_does_not_import_ray_before_a_ray_search():
    """Importing Ray took a second of CPU on every app server's first Search page."""
    code = (
        "import sys; from core.search.evaluators.ray_eval import cluster_status;"
        " print(cluster_status()); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ray_eval.ROOT, capture_output=True, text=True, timeout=120)
    status, imported = out.stdout.strip().splitlines()
    assert status.startswith("no Ray cluster yet: the first ray search joins") and imported == "False", out


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """The same tiny search with the single and the ray evaluator, in one store."""
    store = Store(tmp_path_factory.mktemp("ray") / "runs.db")
    runs = {
        ev: create_run(store, preset_config("cnn", "demo", **TINY, evaluator=ev, max_steps=1))
        for ev in ("single", "ray")
    }
    for run_id in runs.values():
        assert run_search(store, run_id) == RunStatus.FINISHED
    return store, runs


def test_a_ray_search_gives_the_records_and_choices_of_single_and_records_its_cluster(searches):
    store, runs = searches
    steps = {ev: store.steps(r) for ev, r in runs.items()}
    assert [s.removed for s in steps["ray"]] == [s.removed for s in steps["single"]] and len(steps["ray"]) == 2
    single, distributed = store.candidates(runs["single"]), store.candidates(runs["ray"])
    # step 0: the dense DAG under the demo's 3 noise seeds; step 1: k=2 candidates
    assert len(distributed) == 3 + 2 and [_comparable(c) for c in distributed] == [_comparable(c) for c in single]
    run = store.get_run(runs["ray"])
    assert run.evaluator == "ray" and run.cluster["nodes"] == 1 and run.cluster["cpus"] == os.cpu_count()
    assert all(c.worker.endswith(ray.get_runtime_context().get_node_id()[:8]) for c in distributed)
    assert all(c.worker == "" for c in single) and store.get_run(runs["single"]).cluster == {}


def test_a_ray_control_trains_on_the_cluster_the_cells_single_trains(searches):
    from core.search.control import run_control
    from core.store.controls import control_cells, get_control

    store, runs = searches
    for run_id in runs.values():
        assert run_control(store, run_id, 2, [3]) == RunStatus.FINISHED
    cells = {ev: control_cells(store, r) for ev, r in runs.items()}

    def same(c) -> dict:
        return {
            **c.__dict__,
            "wall_s": 0,
            "worker": "",
            "history": [{k: v for k, v in row.items() if k != "seconds"} for row in c.history],
        }

    assert len(cells["ray"]) == 2 and [same(c) for c in cells["ray"]] == [same(c) for c in cells["single"]]
    assert get_control(store, runs["ray"]).evaluator == "ray" and all(c.worker for c in cells["ray"])


def test_the_search_page_shows_the_cluster_and_the_run_s_evaluator(monkeypatch, searches):
    from streamlit.testing.v1 import AppTest

    store, runs = searches
    monkeypatch.setenv("AUTOSHRINK_STORE", str(store.path))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=90)
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(runs["ray"]).run()
    at.switch_page("views/search.py").run()
    assert not at.exception, [e.value for e in at.exception]
    texts = "\n".join(str(e.value) for kind in (at.markdown, at.caption) for e in kind)
    assert f"ray local: 1 node, {os.cpu_count()} CPUs, 0 GPUs; at most" in texts  # under the form
    assert "evaluator ray on ray local: 1 node" in texts  # the run's header


def test_a_worker_killed_mid_candidate_is_retried_from_its_seed(single_records):
    task, jobs, seed = _step(evaluator="ray", **LONGER)
    out, results = {}, []
    worker = threading.Thread(
        target=lambda: out.update(
            records=ray_eval.evaluate_ray(StepJob(task, 1, jobs, seed, NEVER, NOP, results.append))
        )
    )
    worker.start()
    victims = []
    while worker.is_alive() and not victims:
        victims = _my_workers()
        time.sleep(0.05)
    assert victims, "no worker was seen training"
    assert victims[0] in _my_workers() and not results, "the candidate ended before the kill"
    os.kill(victims[0], signal.SIGKILL)
    worker.join(300)
    assert not worker.is_alive()
    assert victims[0] not in _my_workers("ray::")  # the victim is gone, not only idle
    records = out["records"]
    assert [r.idx for r in records] == [0, 1] and sorted(r.idx for r in results) == [0, 1]  # none lost, none twice
    assert [_comparable(r) for r in records] == [_comparable(r) for r in single_records]
    assert choose(records).edge == choose(single_records).edge


def test_a_stop_request_cancels_the_running_tasks():
    task, jobs, seed = _step(evaluator="ray", **{**LONGER, "epochs": 50})
    stop, out = threading.Event(), {}
    worker = threading.Thread(
        target=lambda: out.update(records=ray_eval.evaluate_ray(StepJob(task, 1, jobs, seed, stop.is_set, NOP, NOP)))
    )
    worker.start()
    while worker.is_alive() and not _my_workers():
        time.sleep(0.2)
    stop.set()
    worker.join(120)
    assert not worker.is_alive() and len(out["records"]) < len(jobs)  # the step is not complete
    # nothing trains on after the stop (a worker's title may lag its cancelled task briefly)
    wait_until(lambda: _my_workers() == [], "the workers to stop training", 1.0, poll=0.1)


def test_search_slots_let_at_most_the_limit_in_and_a_waiting_search_can_stop():
    slots, inside, stop_waiting = SearchSlots(1), [], threading.Event()

    def search(n: int) -> None:
        with slots.slot(lambda: False) as ok:
            inside.append((n, ok))
            time.sleep(0.3)

    threads = [threading.Thread(target=search, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slots.peak == 1 and sorted(inside) == [(0, True), (1, True), (2, True)]
    with slots.slot(NEVER):
        stop_waiting.set()
        with slots.slot(stop_waiting.is_set) as ok:
            assert ok is False  # stopped while waiting: no slot, no tasks


def test_gpu_tasks_on_a_cluster_without_gpus_are_refused_in_one_line():
    task, _, _ = _step(evaluator="ray", ray_gpus_per_candidate=0.25)
    with pytest.raises(ray_eval.RayEvaluatorError, match="asks for GPUs"):
        ray_eval.prepare_ray(task, NOP)


def test_a_gpu_request_on_a_cluster_without_gpus_is_refused_before_any_run_row(tmp_path, capsys):
    """Before: the run was created, claimed, and then failed; now `create_run` refuses it."""
    from core.cli.main import main

    store = tmp_path / "r.db"
    code = main("search cnn --preset demo --evaluator ray --ray-gpus-per-candidate 1".split() + ["--store", str(store)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "asks for GPUs, but ray local: 1 node" in err
    assert Store(store).list_runs() == []


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--ray-chunk", "-1", "ray chunk must be >= 0"),
        ("--ray-cpus-per-candidate", "0", "ray CPUs per candidate must be > 0"),
        ("--ray-gpus-per-candidate", "-1", "ray GPUs per candidate must be >= 0"),
    ],
)
def test_the_cli_hands_the_ray_flags_to_the_settings(tmp_path, capsys, flag, value, message):
    from core.cli.main import main

    assert main(["search", "cnn", "--evaluator", "ray", flag, value, "--store", str(tmp_path / "r.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
