"""Fault suite: SIGTERM (what `kill`, docker and systemd send) is a stop, like Ctrl-C.

Real `python -m core` processes (`search`, `resume`, `train`, `train --resume`) get SIGTERM
while they hold their row: each stops at a batch boundary, leaves its run or job `stopped`
(resumable, nothing committed lost) and exits 143. The app server's Runner does the same
for its background searches and jobs when the server process ends (tests below drive the
Runner in-process, and a real `streamlit run app.py` server gets SIGTERM mid-search).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fault_kit import TINY_SEARCH, spawn
from helpers import CHROMIUM, CHROMIUM_ARGS, start_app_server, tiny_config, wait_until
from test_faults_processes import TIMEOUT, TINY_TRAIN, _finish, _status

from core.cell.presets import load_preset
from core.runner.foreground import EXIT_TERMINATED
from core.runner.threads import Runner
from core.store.controls import claim_control, get_control
from core.store.jobs import JobStore
from core.store.runs import RunStatus, Store
from core.training.config import train_config


def _term_while_running(proc: subprocess.Popen, db: Path, table: str) -> tuple[int, str]:
    wait_until(lambda: _status(db, table) == RunStatus.RUNNING, f"the {table} row to be claimed", TIMEOUT, 0.05, proc)
    proc.send_signal(signal.SIGTERM)
    return _finish(proc)


def _stopped_by_sigterm(code: int, err: str) -> None:
    assert code == EXIT_TERMINATED and "Traceback" not in err and "SIGTERM" in err, (code, err)


def test_sigterm_stops_search_and_resume_with_143(tmp_path):
    db = tmp_path / "runs.db"
    code, err = _term_while_running(spawn("search", "cnn", *TINY_SEARCH, "--store", db), db, "runs")
    _stopped_by_sigterm(code, err)
    assert "resume with `resume 1`" in err
    store = Store(db)
    assert store.get_run(1).status == RunStatus.STOPPED
    kept = [s.to_dict() for s in store.steps(1)]
    code, err = _term_while_running(spawn("resume", 1, "--store", db), db, "runs")
    _stopped_by_sigterm(code, err)
    assert store.get_run(1).status == RunStatus.STOPPED  # resumable; that a resume then finishes is the Ctrl-C test's
    assert [s.to_dict() for s in store.steps(1)][: len(kept)] == kept


def test_sigterm_stops_train_and_train_resume_with_143(tmp_path):
    db = tmp_path / "runs.db"
    code, err = _term_while_running(spawn(*TINY_TRAIN, "--store", db), db, "jobs")
    _stopped_by_sigterm(code, err)
    jobs = JobStore(db)
    assert jobs.get_job(1).status == RunStatus.STOPPED
    kept = [e.to_dict() for e in jobs.epochs(1)]
    code, err = _term_while_running(spawn("train", "--resume", 1, "--store", db), db, "jobs")
    _stopped_by_sigterm(code, err)
    assert jobs.get_job(1).status == RunStatus.STOPPED and [e.to_dict() for e in jobs.epochs(1)][: len(kept)] == kept


# ----- the app server's Runner --------------------------------------------------------------


def test_runner_shutdown_stops_its_search_and_job_at_a_batch_boundary(tmp_path):
    store, runner = Store(tmp_path / "runs.db"), Runner()
    run_id = runner.start_search(store, tiny_config(epochs=50))
    job_id = runner.start_train(
        store,
        load_preset("shrinkcnn-a"),
        train_config(
            "cnn", epochs=50, max_batches=3, threads=1, width_multiplier=0.25, cells_per_stage=(1, 1, 1), onnx=False
        ),
    )
    jobs = JobStore(store.path)
    wait_until(
        lambda: store.get_run(run_id).status == RunStatus.RUNNING and jobs.get_job(job_id).status == RunStatus.RUNNING,
        "both to be claimed",
        TIMEOUT,
        0.05,
    )
    stopped = runner.shutdown(grace_s=TIMEOUT)
    assert {(kind, row) for _, kind, row in stopped} == {("search", run_id), ("train", job_id)}
    assert store.get_run(run_id).status == RunStatus.STOPPED and jobs.get_job(job_id).status == RunStatus.STOPPED
    assert not runner.active(store, run_id) and not runner.active(store, job_id, "train")


def test_runner_shutdown_marks_a_thread_that_does_not_stop_in_time(tmp_path, monkeypatch):
    """A search still loading its data when the grace period ends is marked stopped by the Runner."""
    import core.runner.threads as threads

    release = threading.Event()

    def stuck(store, run_id, observer, stop):
        store.claim(run_id, "cpu", "single")
        release.wait(TIMEOUT)  # ignores `stop`, as a data load would

    monkeypatch.setattr(threads, "run_search", stuck)
    store, runner = Store(tmp_path / "runs.db"), Runner()
    run_id = runner.start_search(store, tiny_config())
    wait_until(lambda: store.get_run(run_id).status == RunStatus.RUNNING, "the claim", TIMEOUT, 0.05)
    try:
        runner.shutdown(grace_s=0.2)
        assert store.get_run(run_id).status == RunStatus.STOPPED and store.steps(run_id) == []
    finally:
        release.set()


def test_the_app_runner_stops_on_exit_and_on_sigterm(monkeypatch):
    """ui.resources.get_runner (the app's one Runner) hands its shutdown to atexit and asks the
    server's loop to chain SIGTERM/SIGINT to it (see the real server below)."""
    import atexit

    from ui import resources

    registered, on_loop = [], []
    monkeypatch.setattr(atexit, "register", lambda fn, *a, **kw: registered.append(fn))
    monkeypatch.setattr(resources, "_on_server_loop", on_loop.append)
    resources.get_runner.clear()
    try:
        runner = resources.get_runner()
    finally:
        resources.get_runner.clear()
    assert registered == [runner.shutdown_at_exit] and len(on_loop) == 1
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        on_loop[0]()  # what the server's loop runs, on the main thread
        assert signal.getsignal(signal.SIGTERM).stops_runner is runner
        assert signal.getsignal(signal.SIGINT).stops_runner is runner
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_a_chained_sigterm_stops_the_runner_before_the_previous_handler(tmp_path):
    """The chained handler runs the Runner's shutdown (runs marked stopped) and then the handler
    that was there before (Streamlit's, in a server), in that order."""
    from core.runner.threads import chain_stop_signals

    store, runner, seen = Store(tmp_path / "runs.db"), Runner(), []
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(store.get_run(run_id).status))
    try:
        assert chain_stop_signals(runner) and chain_stop_signals(runner)  # twice: chained once
        run_id = runner.start_search(store, tiny_config(epochs=50))
        wait_until(lambda: store.get_run(run_id).status == RunStatus.RUNNING, "the claim", TIMEOUT, 0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: seen, "the previous handler", TIMEOUT, 0.05)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert seen == [RunStatus.STOPPED]


def test_an_app_server_stopped_by_sigterm_leaves_its_search_stopped(tmp_path):
    """A real `streamlit run app.py`: Start a demo search in a browser, SIGTERM the server while the
    search runs; the server exits 0 and the run reads `stopped`, not `running` or interrupted."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    db, log_path = tmp_path / "app.db", tmp_path / "server.log"
    env = {**os.environ, "AUTOSHRINK_STORE": str(db), "AUTOSHRINK_SAMPLES": "off", "PYTHONUNBUFFERED": "1"}
    env.pop("AUTOSHRINK_MODE", None)
    with open(log_path, "w") as log:
        server, port = start_app_server(env, log, TIMEOUT)
        try:
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    page.goto(f"http://localhost:{port}/")
                    page.get_by_role("button", name="Start search").click(timeout=60_000)
                    wait_until(
                        lambda: _status(db, "runs") == RunStatus.RUNNING,
                        "the app's search to run",
                        TIMEOUT,
                        0.05,
                        server,
                    )
                finally:
                    browser.close()
            server.send_signal(signal.SIGTERM)
            code = server.wait(TIMEOUT)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    assert code == 0, log_path.read_text()
    run = Store(db).get_run(1)
    assert run.status == RunStatus.STOPPED and run.error == "", (run.status, run.error, log_path.read_text())


def test_shutdown_stops_every_helper_thread_even_two_of_one_name():
    """Helpers (the app's warm-up, one per store) have no row; each must stay tracked, so that exit
    waits for all of them rather than finalising the interpreter under one of them."""
    runner, ran = Runner(), []

    def work(stop: threading.Event) -> None:
        ran.append(1)
        stop.wait(60)

    runner.start_helper("compare-warm-up", work)
    runner.start_helper("compare-warm-up", work)
    wait_until(lambda: len(ran) == 2, "both helpers to start", TIMEOUT, 0.01)
    stopped = runner.shutdown(grace_s=10)
    assert len(stopped) == 2 and all(kind == "helper" for _, kind, _ in stopped)
    assert not any(thread.is_alive() for thread, _ in runner._threads.values())


STUCK_SERVER = """
import functools, os, signal, sys, threading, time
import torch
from core.runner import threads

runner = threads.Runner()
runner.shutdown = functools.partial(runner.shutdown, grace_s=0.3)

def stuck(stop):  # work that never reaches a batch boundary (still loading data, say)
    x = torch.randn(256, 256)
    while True:
        x = (x @ x).tanh()

kind = sys.argv[2]
if kind == "helper":
    runner.start_helper("compare-warm-up", stuck)
else:
    runner._launch((sys.argv[1], kind, 1), stuck)
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda s, f: stopped.set())  # like Streamlit's: stop the server
threads.chain_stop_signals(runner)
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGTERM)
stopped.wait()
print("server stopped")
"""


def _claimed_rows(db: Path) -> tuple[Store, JobStore]:
    """Run 1 with a running control, and a running job 1, all claimed by this test's process (so a
    row the server leaves alone reads `running`)."""
    store, jobs = Store(db), JobStore(db)
    run_id = store.create_run("cnn", tiny_config().to_dict(), 3)
    store.claim(run_id, "cpu", "single")
    claim_control(store, run_id, 2, [3], "cpu")
    job_id = jobs.create_job("cnn", load_preset("shrinkcnn-a"), {}, "test")
    jobs.claim_job(job_id, "cpu")
    return store, jobs


@pytest.mark.parametrize("kind", ["search", "control", "helper"])
def test_sigterm_with_a_thread_stuck_in_torch_still_exits_0(tmp_path, kind):
    """Before: on a loaded server a search that had not reached a batch boundary within the
    grace was still inside torch when the interpreter finalised, and the process aborted in C++
    (SIGABRT, "terminate called without an active exception") instead of exiting 0. The app's
    Compare warm-up thread (a `helper`: no row) did the same to a server stopped soon after its
    start. A control left so was marked through the jobs table: job 1 `stopped`, control live."""
    db = tmp_path / "s.db"
    store, jobs = _claimed_rows(db)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", STUCK_SERVER, str(db.resolve()), kind],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "server stopped" in proc.stdout and "terminate called" not in proc.stderr
    stopped = {"search": store.get_run(1).status, "control": get_control(store, 1).status}
    assert stopped == {k: RunStatus.STOPPED if k == kind else RunStatus.RUNNING for k in stopped}
    assert jobs.get_job(1).status == RunStatus.RUNNING  # a job of another process: untouched
