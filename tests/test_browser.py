"""End to end in a real browser: `streamlit run app.py` on a free localhost port with a
temporary store, driven by Playwright's chromium (the system one at /usr/bin/chromium).

It starts a `demo` search from the Search page, waits for its first committed step, opens
the Explorer and moves the step slider, visits every page, and fails on any exception box
or traceback. Screenshots land in artifacts/ for a human to look at.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from helpers import wait_until

from core.store.runs import FINISHED, STOPPED, Store

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("streamlit did not become healthy")


@contextlib.contextmanager
def app_server(store: Path, log_path: Path, **env_changes: str | None) -> Iterator[str]:
    """A headless app server on a free port over `store`, killed afterwards; yields its base URL.
    An env change of None removes that variable."""
    port = _free_port()
    env = dict(os.environ, AUTOSHRINK_STORE=str(store), PYTHONUNBUFFERED="1")
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "localhost", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(port, proc)
        yield f"http://localhost:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def server(tmp_path: Path):
    """A headless app server with an empty temporary store."""
    store = tmp_path / "browser.db"
    with app_server(store, tmp_path / "server.log") as base:
        yield base, store


def _main(page):
    """The page body: Streamlit's header shows its own "Stop" button while a script run is in
    progress (a live fragment refreshing), which a page-wide lookup of the app's Stop also finds."""
    return page.get_by_test_id("stMainBlockContainer")


def _no_exception(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0, f"{name}: exception box on the page"
    assert "Traceback" not in page.content(), f"{name}: a traceback is on the page"


def _goto(page, base: str, title: str) -> None:
    """Open a page from the navigation, as a user would, and wait for its title."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let charts and the DAG finish drawing


def test_demo_search_in_browser(server) -> None:
    base, store_path = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(base + "/explorer")  # a deep link on a fresh server still gets the sidebar
            page.get_by_role("heading", name="Explorer", exact=True).wait_for(timeout=60_000)
            assert page.locator("[data-testid='stSidebar']").get_by_text("Run store").count() == 1
            _goto(page, base, "Search")
            start = page.get_by_role("button", name="Start search")
            start.wait_for(timeout=30_000)
            _no_exception(page, "01-search-empty")
            start.click()

            store = Store(store_path)
            wait_until(lambda: bool(store.list_runs()), "the run to be created", 30, poll=0.5)
            run_id = store.list_runs()[0].id
            assert store.get_run(run_id).config["preset"] == "demo"
            wait_until(lambda: len(store.steps(run_id)) >= 1, "the first committed step", 300, poll=0.5)
            page.wait_for_timeout(3000)  # the live panel refreshes every 2 s
            assert page.get_by_text("edges removed").count() >= 1  # progress in edges to the target
            _no_exception(page, "02-search-running")

            _goto(page, base, "Explorer")
            wait_until(lambda: len(store.steps(run_id)) >= 2, "a second committed step", 300, poll=0.5)
            page.reload()
            page.get_by_role("heading", name="Explorer", exact=True).wait_for(timeout=30_000)
            slider = page.get_by_role("slider")
            slider.wait_for(timeout=30_000)
            before = slider.input_value()
            slider.focus()
            page.keyboard.press("Home")
            wait_until(lambda: slider.input_value() == "0", "the slider to move to step 0", 15, poll=0.5)
            assert before != "0"
            page.get_by_text("Step 0 trains the dense starting DAG").first.wait_for(timeout=15_000)
            page.wait_for_timeout(1500)
            _no_exception(page, "03-explorer-step0")
            page.keyboard.press("End")
            page.get_by_text("scored best").first.wait_for(timeout=15_000)
            page.wait_for_timeout(1500)
            _no_exception(page, "04-explorer-last")

            _goto(page, base, "Trade-offs")
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
            _no_exception(page, "05-tradeoffs")

            _goto(page, base, "Compare")
            page.get_by_text("Edges only one of them has").wait_for(timeout=60_000)
            page.wait_for_timeout(2000)
            _no_exception(page, "06-compare")

            _goto(page, base, "Search")
            if store.get_run(run_id).status not in (FINISHED,):
                _main(page).get_by_role("button", name="Stop").click()
                wait_until(lambda: store.get_run(run_id).status in (STOPPED, FINISHED), "the run to stop",
                           60, poll=0.5)
            page.wait_for_timeout(3000)
            _no_exception(page, "07-search-stopped")
        finally:
            browser.close()


def test_train_page_in_browser(server) -> None:
    """Start a demo training from the Train page, watch its curves appear, stop it."""
    from core.store.jobs import JobStore
    base, store_path = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(base + "/train")
            page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)
            start = page.get_by_role("button", name="Start training")
            start.wait_for(timeout=30_000)
            _no_exception(page, "08-train-empty")
            start.click()
            jobs = JobStore(store_path)
            wait_until(lambda: bool(jobs.list_jobs()), "the job to be created", 30, poll=0.5)
            job_id = jobs.list_jobs()[0].id
            wait_until(lambda: len(jobs.epochs(job_id)) >= 1, "the first epoch", 120, poll=0.5)
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)   # live curves, refreshed every 2 s
            assert page.get_by_text(f"Job #{job_id}").count() >= 1
            _no_exception(page, "09-train-running")
            if jobs.get_job(job_id).status != FINISHED:
                _main(page).get_by_role("button", name="Stop").click()
                wait_until(lambda: jobs.get_job(job_id).status in (STOPPED, FINISHED), "the job to stop",
                           60, poll=0.5)
            page.wait_for_timeout(3000)
            _no_exception(page, "10-train-stopped")
        finally:
            browser.close()
