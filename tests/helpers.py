"""What many test files share, declared once: where the real data is, the tiny search config,
polling until something happens, the app under AppTest, and the kill -9 of a running process.

Tests import from here, never from conftest (pytest loads conftest itself; importing it as a
module runs it twice under two names).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
from streamlit.testing.v1 import AppTest

from core.search.config import SearchConfig, preset_config

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CIFAR_DIR = SHARED_DATA / "cifar10" / "cifar-10-batches-py"
PTB_DIR = SHARED_DATA / "ptb-proxy"
APP_TIMEOUT = 90  # first runs import torch and cost ImageNet networks on a busy 2-core machine

# The smallest search that still trains: 3 nodes, 2 one-epoch candidates, one step after the baseline.
TINY_SEARCH = dict(nodes=3, k=2, epochs=1, max_steps=1, threads=1)
# A tiny CNN proxy for the evaluator tests (batched against single): k is each file's own.
TINY_PROXY_CNN = dict(
    nodes=4,
    epochs=3,
    threads=1,
    stem_channels=8,
    base_width=4,
    per_class_train=30,
    per_class_val=15,
    batch_size=32,
)


def needs(path: Path, what: str):
    """Skip a real-data test with a stated reason when ../shared is absent."""
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path} (../shared/data is absent)")


def tiny_config(task: str = "cnn", **overrides: Any) -> SearchConfig:
    """The demo preset shrunk to TINY_SEARCH; `overrides` change any field."""
    return preset_config(task, "demo", **{**TINY_SEARCH, **overrides})


def wait_until(
    predicate: Callable[[], Any],
    what: str,
    timeout: float = 60.0,
    poll: float = 0.2,
    proc: subprocess.Popen | None = None,
) -> Any:
    """Poll `predicate()` until it returns something truthy and return that; fail with `what` on
    timeout, or early when `proc` (a child process the wait depends on) has ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"process ended (rc {proc.returncode}) before {what}: {stderr}")
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def app_test(monkeypatch: pytest.MonkeyPatch, store_path: Path, timeout: float = APP_TIMEOUT) -> AppTest:
    """The whole app (app.py, with its sidebar and navigation) on the store at `store_path`."""
    monkeypatch.setenv("AUTOSHRINK_STORE", str(store_path))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)


def kill_9_when(
    proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout: float, poll: float = 0.2
) -> None:
    """SIGKILL `proc` as soon as `ready()` (no cleanup can run: the crash a power cut makes);
    fail if it ended first. The process is always reaped."""
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(poll)
        assert proc.poll() is None, f"{what} ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def start_app_server(env: dict[str, str], log, timeout: float = 120.0) -> tuple[subprocess.Popen, int]:
    """`streamlit run app.py` headless on a free localhost port, with `env`, output to `log`;
    returns once the server answers its health check (the caller stops it)."""
    port = free_port()
    args = ["--server.port", str(port), "--server.headless", "true", "--server.address", "localhost",
            "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    wait_until(lambda: server_healthy(port), "the app server to answer", timeout, 0.2, proc)
    return proc, port


def synced_widget(widgets, state_key: str):
    """The one widget ui.synced draws for `state_key` in an AppTest (its key carries a version),
    e.g. synced_widget(at.slider, "explorer_step")."""
    found = [w for w in widgets if (w.key or "").startswith(f"{state_key}__v")]
    assert len(found) == 1, f"{len(found)} widgets drawn for {state_key}"
    return found[0]


def run_cli(*args: object, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m core ARGS` in a child process, as a user runs it; asserts success unless `check` is off."""
    out = subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def run_main(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """`python -m core ARGS` through core.cli.main in this process (the console's code path without
    paying torch's start-up again): (exit code, stdout, stderr)."""
    from core.cli.main import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def parent_pid(pid: int) -> int | None:
    """The parent of process `pid` from /proc (Linux); None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])  # the name in (...) may hold spaces
    except OSError:
        return None


def count_rows(path: Path, sql: str) -> int:
    """`SELECT COUNT(*) ...` on a store another process is writing: 0 while the file or table is
    not there yet, or is locked (a kill -9 test polls this until the child has got far enough)."""
    try:
        with sqlite3.connect(path, timeout=1) as con:
            return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
