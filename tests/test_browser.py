"""End to end in a real browser: `streamlit run app.py` on a free localhost port with a
temporary store, driven by Playwright's chromium (the system one at /usr/bin/chromium).

It starts a `demo` search from the Search page, waits for its first committed step, opens
the Explorer and moves the step slider, visits every page, and fails on any exception box
or traceback. Screenshots land in artifacts/ for a human to look at. Every wait is on what
the page shows (or the store says), never a fixed sleep: the machine may be slow or busy.

One server serves every journey of the file, as one serves a class: each journey reads only the
runs it made (the later ones open theirs by ?run=ID). After the search and the training, a
student steps a live run with the keyboard, and the Trade-offs page draws a random control.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest
from fake_runs import add_step, fake_control, fake_run
from helpers import CHROMIUM, CHROMIUM_ARGS, start_app_server, wait_until

from core.store.runs import RunStatus, Store
from ui.figures import CONTROL_NAME

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
expect = sync_api.expect
# Bounds, not sleeps: every wait returns as soon as the page shows what it waits for. They are
# generous because the machine may be shared and slow (a page load took over 30 s at load 10).
expect.set_options(timeout=60_000)
ACTION_MS, NAVIGATION_MS = 60_000, 120_000
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")


@contextlib.contextmanager
def app_server(store: Path, log_path: Path, **env_changes: str | None) -> Iterator[str]:
    """A headless app server on a free port over `store`, killed afterwards; yields its base URL.
    An env change of None removes that variable."""
    env = dict(os.environ, AUTOSHRINK_STORE=str(store), PYTHONUNBUFFERED="1")
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    log = open(log_path, "w")
    try:
        proc, port = start_app_server(env, log)
    except BaseException:
        log.close()
        raise
    try:
        yield f"http://localhost:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A headless app server with an empty temporary store, shared by this file's journeys in
    their order (the search first finds the store empty): each reads only the rows it made."""
    folder = tmp_path_factory.mktemp("browser")
    with app_server(folder / "browser.db", folder / "server.log") as base:
        yield base, folder / "browser.db"


@contextlib.contextmanager
def browser_page(width: int = 1600, height: int = 1200) -> Iterator:
    """A page of a headless Chromium, with this file's bounds for actions and navigation; the
    browser is closed afterwards, whatever the test did."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(ACTION_MS)
            page.set_default_navigation_timeout(NAVIGATION_MS)
            yield page
        finally:
            browser.close()


def _no_exception(page, name: str) -> None:
    """Once the page has finished its script run (an exception box comes at the end of one, and a
    screenshot of a half-drawn page shows grey placeholders): no exception, and a screenshot."""
    settled(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0, f"{name}: exception box on the page"
    assert "Traceback" not in page.content(), f"{name}: a traceback is on the page"


SETTLED_JS = """() => { const app = document.querySelector("[data-testid='stApp']");
    return !!app && app.dataset.testScriptState === "notRunning" && !document.querySelector("[data-stale='true']"); }"""
# The Step slider of the current script run: a versioned slider (ui/synced.py) is replaced when
# the server moves the step, and for an instant the old one is still drawn (greyed out, or not
# yet removed), so the page may hold two. Null unless exactly one is current.
SLIDER_JS = """() => { const s = [...document.querySelectorAll("input[type=range]")]
    .filter(e => !e.closest("[data-stale='true']"));
    return s.length === 1 ? {value: s[0].value, max: s[0].max} : null; }"""
TITLE_JS = """() => (document.querySelector("svg.dag") || {}).getAttribute?.("aria-label") || "" """


def settled(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page shows a finished script run: Streamlit's app root says no run is in
    flight and no element is left greyed out (stale) from the run before."""
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms)


def dag_title(page) -> str:
    """The title (aria-label) of the first DAG on the page, '' without one."""
    return page.evaluate(TITLE_JS)


def step_slider(page) -> dict | None:
    """{"value", "max"} of the one current Step slider, None while there is none or two."""
    return page.evaluate(SLIDER_JS)


def focus_slider(page) -> None:
    """Put the focus on the Step slider once the page has settled (so only one is drawn)."""
    settled(page)
    page.get_by_role("slider", name="Step").focus()


def press_until(
    page,
    key: str,
    shown: Callable[[], bool],
    what: str,
    focus: Callable[[], None] | None = None,
    tries: int = 3,
    each_s: float = 45,
) -> None:
    """Press `key` (after calling `focus`, which puts the focus where the key belongs) until the
    page shows `what`, at most `tries` times.
    A key pressed in the instant a rerun replaces the focused widget is lost (Streamlit merges
    the reruns, or the new widget has no focus); then it is pressed again, as a person would,
    but only after `each_s` and once the page has settled without showing it: on a busy
    machine a key's rerun can start 20 s late, and pressing again then would step twice."""
    for _ in range(tries):
        if focus is not None:
            focus()
        page.keyboard.press(key)
        try:
            wait_until(shown, what, each_s, poll=0.5)
            return
        except pytest.fail.Exception:  # wait_until's timeout
            settled(page)
            if shown():
                return
    raise TimeoutError(f"{what} after {key} x{tries}: the DAG says {dag_title(page)!r} at {page.url}")


def start_from(page, button: str, shot: str, newest_first: Callable[[], list]) -> int:
    """Press a page's start button once it is enabled, as a user would, and wait for the row it
    creates (`newest_first` lists the store's rows); returns that row's id."""
    start = page.get_by_role("button", name=button)
    expect(start).to_be_enabled()
    _no_exception(page, shot)
    start.click()
    return wait_until(newest_first, f"the row '{button}' creates", 60, poll=0.5)[0].id


def _goto(page, base: str, title: str) -> None:
    """Open a page from the navigation, as a user would, and wait until it is drawn."""
    page.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    settled(page)


def test_demo_search_in_browser(server) -> None:
    """The live run is watched while it runs; the keys are pressed once the page shows the
    finished run, since the finish reruns the whole page and would drop a key pressed then."""
    base, store_path = server
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        page.goto(base + "/explorer")  # a deep link on a fresh server still gets the sidebar
        page.get_by_role("heading", name="Explorer", exact=True).wait_for()
        expect(page.locator("[data-testid='stSidebar']").get_by_text("Run store")).to_have_count(1)
        _goto(page, base, "Search")
        store = Store(store_path)
        run_id = start_from(page, "Start search", "01-search-empty", store.list_runs)
        assert store.get_run(run_id).config["preset"] == "demo"
        # the live panel draws the DAG after the first committed step, with progress in edges
        wait_until(lambda: "after step" in dag_title(page), "the live DAG after the first step", 300, poll=0.5)
        expect(page.get_by_text("edges removed").first).to_be_visible()
        _no_exception(page, "02-search-running")

        _goto(page, base, "Explorer")
        # the live view grows a slider at its second step
        wait_until(lambda: step_slider(page), "the Step slider", 300, poll=0.5)
        wait_until(
            lambda: store.get_run(run_id).status in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED),
            "the run to end",
            300,
            poll=0.5,
        )
        assert store.get_run(run_id).status == RunStatus.FINISHED, store.get_run(run_id).error
        last = store.steps(run_id)[-1].step
        expect(page.get_by_text("live ·")).to_have_count(0)  # the page shows it ended
        wait_until(lambda: (step_slider(page) or {}).get("max") == str(last), f"a slider up to {last}", 60)
        settled(page)
        press_until(
            page,
            "Home",
            lambda: dag_title(page).startswith("step 0:") and (step_slider(page) or {}).get("value") == "0",
            "step 0",
            focus=lambda: focus_slider(page),
        )
        expect(page.get_by_text("Step 0 trains the dense starting DAG").first).to_be_visible()
        settled(page)
        _no_exception(page, "03-explorer-step0")
        press_until(
            page,
            "End",
            lambda: dag_title(page).startswith(f"step {last}:") and (step_slider(page) or {}).get("value") == str(last),
            f"step {last}",
            focus=lambda: focus_slider(page),
        )
        expect(page.get_by_text("scored best").first).to_be_visible()
        settled(page)
        _no_exception(page, "04-explorer-last")

        _goto(page, base, "Trade-offs")
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        _no_exception(page, "05-tradeoffs")

        _goto(page, base, "Compare")
        expect(page.get_by_text("Edges only one of them has")).to_be_visible(timeout=60_000)
        settled(page)
        _no_exception(page, "06-compare")

        _goto(page, base, "Search")
        expect(page.get_by_text("finished:").first).to_be_visible()  # progress at the end
        _no_exception(page, "07-search-finished")


def test_train_page_in_browser(server) -> None:
    """Start a demo training from the Train page, watch its curves appear, stop it. After the
    search journey above (same server) the page offers that run's best snapshot, as it does a
    user who has just searched; run alone, it offers a preset."""
    from core.store.jobs import JobStore

    base, store_path = server
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        page.goto(base + "/train")
        page.get_by_role("heading", name="Train", exact=True).wait_for()
        jobs = JobStore(store_path)
        job_id = start_from(page, "Start training", "08-train-empty", jobs.list_jobs)
        expect(page.get_by_text(f"Job #{job_id}").first).to_be_visible()
        wait_until(lambda: len(jobs.epochs(job_id)) >= 1, "the first epoch", 300, poll=0.5)
        expect(page.locator(".js-plotly-plot").first).to_be_visible()  # live curves, every 2 s
        _no_exception(page, "09-train-running")
        if jobs.get_job(job_id).status != RunStatus.FINISHED:
            try:
                # the page's Stop, not the header's (Streamlit's "Stop" for a script run in flight)
                page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
            except sync_api.TimeoutError:  # no Stop button: the job ended just before
                assert jobs.get_job(job_id).status == RunStatus.FINISHED
            wait_until(
                lambda: jobs.get_job(job_id).status in (RunStatus.STOPPED, RunStatus.FINISHED),
                "the job to stop",
                60,
                poll=0.5,
            )
        ended = jobs.get_job(job_id).status
        # the page's status line says so (the live fragment reruns the page when the job ends)
        expect(page.locator("strong").filter(has_text=re.compile(rf"{ended}$")).first).to_be_visible()
        settled(page)
        _no_exception(page, "10-train-stopped")


# ----- classroom: a live run stepped with the keyboard ------------------------------------------
NODES_JS = """() => Object.fromEntries([...document.querySelectorAll("svg.dag g[data-node]")].map(g => {
    const svg = g.ownerSVGElement.getBoundingClientRect(), box = g.getBoundingClientRect();
    return [g.dataset.node, [g.getAttribute("transform"), Math.round(box.x - svg.x), Math.round(box.y - svg.y)]];
}))"""


def _title_has(page, text: str) -> bool:
    return text in dag_title(page)


def _press(page, key: str, title: str, focus) -> None:
    """Press `key` until the DAG is titled `title` (press_until: a key pressed in the instant
    a live refresh reruns the view can be lost, and is pressed again). `focus` first puts the
    focus on the page, not a widget, before each press, as a person would."""
    press_until(page, key, lambda: _title_has(page, title), title, focus=focus, tries=2)


def test_keyboard_steps_a_live_run_and_nodes_stay_put(server) -> None:
    """A live run (claimed by this test process, grown step by step) followed by the Explorer and
    stepped through with the arrow keys: the DAG's nodes stay exactly where they were (SVG
    coordinates and on-screen boxes) while only the edges change; then the Presenter opened from
    a link and stepped with the keyboard."""
    base, store_path = server
    store = Store(store_path)
    run_id = fake_run(store, nodes=8, steps=3, k=5, live=True)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(1400, 1000) as page:
        outside: list[str] = []  # the app must work offline: nothing fetched beyond this server
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None)
        page.goto(f"{base}/explorer?run={run_id}")
        page.locator("svg.dag").first.wait_for(timeout=90_000)
        wait_until(lambda: _title_has(page, "step 3:"), "the newest step (3)", 60, poll=0.5)
        expect(page.get_by_text("live ·").first).to_be_visible()
        expect(page.get_by_text("4 steps so far")).to_be_visible()
        settled(page)  # keys pressed during the first runs can be lost
        first = page.evaluate(NODES_JS)
        assert len(first) == 9  # 8 nodes and the output
        on_page = page.get_by_role("heading", name="Explorer").click  # focus the page, not a widget
        seen = {}
        for n in (2, 1, 0):
            _press(page, "ArrowLeft", f"step {n}:", on_page)
            settled(page)  # the rerun ends before the next key (no key mashing)
            seen[n] = page.evaluate(NODES_JS)
            assert seen[n] == first, f"nodes moved at step {n}"
        page.screenshot(path=str(ARTIFACTS / "classroom-explorer-step0.png"))
        add_step(store, run_id)  # the search commits step 4 while the student looks at step 0
        expect(page.get_by_text("5 steps so far, 4 newer than this one")).to_be_visible()
        expect(page.locator("input[type=range][max='4']")).to_have_count(1)  # the slider grew (one, once redrawn)
        assert _title_has(page, "step 0:")  # and the view stayed
        settled(page)
        _press(page, "ArrowRight", "step 1:", on_page)
        assert page.evaluate(NODES_JS) == first
        page.get_by_text("Follow the newest step").click()
        wait_until(lambda: _title_has(page, "step 4:"), "following to step 4", 60, poll=0.5)
        assert page.evaluate(NODES_JS) == first
        page.screenshot(path=str(ARTIFACTS / "classroom-explorer-live.png"))

        page.goto(f"{base}/presenter?run={run_id}&step=2")
        page.locator("svg.dag").first.wait_for()
        wait_until(lambda: _title_has(page, "step 2:"), "the linked step 2", 60, poll=0.5)
        wait_until(
            lambda: page.locator("[data-testid='stSidebar']").is_hidden(), "full screen (no sidebar)", 60, poll=0.5
        )
        settled(page)  # as in the Explorer: a key pressed during the page's first runs can be lost
        try:
            _press(page, "ArrowRight", "step 3:", lambda: page.mouse.click(5, 900))  # the page, not a widget
        except TimeoutError:
            page.screenshot(path=str(ARTIFACTS / "classroom-presenter-lost-key.png"))
            raise
        try:  # the link is sent after the render
            wait_until(lambda: "step=3" in page.url, "the address bar to link step 3", 60, poll=0.5)
        except pytest.fail.Exception:
            pytest.fail(f"the address bar says {page.url} while the DAG says {dag_title(page)!r}")
        page.screenshot(path=str(ARTIFACTS / "classroom-presenter.png"))
        assert page.locator("[data-testid='stException']").count() == 0
        assert not outside, f"fetched from outside the server: {outside}"


# ----- the random control on Trade-offs -----------------------------------------------------------
def test_tradeoffs_shows_the_control_crosses_in_the_browser(server) -> None:
    """A recorded run and control (tests/fake_runs.py): this test is about the drawing, and
    tests/test_control.py trains real controls."""
    base, store_path = server
    store = Store(store_path)
    run_id = fake_run(store, nodes=5, steps=5, k=3, noise_seeds=2)
    fake_control(store, run_id, 4)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(1400, 1100) as page:
        page.goto(f"{base}/?run={run_id}")
        page.locator("[data-testid='stSidebarNav']").wait_for(timeout=60_000)
        _goto(page, base, "Trade-offs")
        page.locator(".legendtext", has_text=CONTROL_NAME).first.wait_for(timeout=30_000)
        assert page.locator(".scatterlayer .point").count() > 0
        assert page.get_by_text("Run a random control").count() >= 1
        assert page.get_by_text("by more than the noise").count() >= 1
        _no_exception(page, "tradeoffs-control")
