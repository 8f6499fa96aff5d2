"""Classroom mode in a real browser: a live run (claimed by this test process, grown step by
step) followed by the Explorer and stepped through with the arrow keys, checking that the
DAG's nodes stay exactly where they were (SVG coordinates and on-screen boxes) while only
the edges change; then the Presenter opened from a link and stepped with the keyboard.
Skips without chromium or playwright, like tests/test_browser.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from fake_runs import add_step, fake_run
from helpers import wait_until
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    app_server,
    sync_api,
)

from core.store.runs import Store

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")

NODES_JS = """() => Object.fromEntries([...document.querySelectorAll("svg.dag g[data-node]")].map(g => {
    const svg = g.ownerSVGElement.getBoundingClientRect(), box = g.getBoundingClientRect();
    return [g.dataset.node, [g.getAttribute("transform"), Math.round(box.x - svg.x), Math.round(box.y - svg.y)]];
}))"""
TITLE_JS = """() => (document.querySelector("svg.dag") || {}).getAttribute?.("aria-label") || "" """


@pytest.fixture
def live_server(tmp_path: Path):
    store = Store(tmp_path / "live.db")
    run_id = fake_run(store, nodes=8, steps=3, k=5, live=True)
    with app_server(store.path, tmp_path / "server.log", AUTOSHRINK_MODE=None) as base:
        yield base, store, run_id


def _title_has(page, text: str) -> bool:
    return text in page.evaluate(TITLE_JS)


def _press(page, key: str, title: str) -> None:
    """Press `key` and wait for the DAG titled `title`. A key pressed in the instant a live
    refresh reruns the view can be lost (Streamlit merges the two reruns); then it is
    pressed once more, as a person would."""
    for attempt in range(2):
        page.keyboard.press(key)
        try:
            wait_until(lambda: _title_has(page, title), f"{title} after {key}", 12, poll=0.5)
            return
        except TimeoutError:
            if attempt:
                raise TimeoutError(f"{title} after {key} twice: the page shows {page.evaluate(TITLE_JS)!r} "
                                   f"at {page.url}") from None


def test_keyboard_steps_a_live_run_and_nodes_stay_put(live_server) -> None:
    base, store, run_id = live_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            outside: list[str] = []  # the app must work offline: nothing fetched beyond this server
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:", "blob:"))
                    else None)
            page.goto(f"{base}/explorer?run={run_id}")
            page.locator("svg.dag").first.wait_for(timeout=90_000)
            wait_until(lambda: _title_has(page, "step 3:"), "the newest step (3)", 30, poll=0.5)
            assert page.get_by_text("live ·").count() >= 1
            page.wait_for_timeout(3000)  # let the first runs settle (keys pressed during them can be lost)
            first = page.evaluate(NODES_JS)
            assert len(first) == 9  # 8 nodes and the output
            page.get_by_role("heading", name="Explorer").click()  # focus the page, not a widget
            seen = {}
            for n in (2, 1, 0):
                _press(page, "ArrowLeft", f"step {n}:")
                page.wait_for_timeout(1000)  # let the run settle before the next key (no key mashing)
                seen[n] = page.evaluate(NODES_JS)
                assert seen[n] == first, f"nodes moved at step {n}"
            page.screenshot(path=str(ARTIFACTS / "classroom-explorer-step0.png"))
            add_step(store, run_id)  # the search commits step 4 while the student looks at step 0
            page.wait_for_timeout(5000)  # two refreshes: the slider grows, the view stays
            assert _title_has(page, "step 0:")
            _press(page, "ArrowRight", "step 1:")
            assert page.evaluate(NODES_JS) == first
            page.get_by_text("Follow the newest step").click()
            wait_until(lambda: _title_has(page, "step 4:"), "following to step 4", 30, poll=0.5)
            assert page.evaluate(NODES_JS) == first
            page.screenshot(path=str(ARTIFACTS / "classroom-explorer-live.png"))

            page.goto(f"{base}/presenter?run={run_id}&step=2")
            page.locator("svg.dag").first.wait_for(timeout=60_000)
            wait_until(lambda: _title_has(page, "step 2:"), "the linked step 2", 30, poll=0.5)
            wait_until(lambda: page.locator("[data-testid='stSidebar']").is_hidden(), "full screen (no sidebar)", 15,
                       poll=0.5)
            page.mouse.click(5, 900)  # focus the page, not a widget
            _press(page, "ArrowRight", "step 3:")
            # the link is sent after the render
            wait_until(lambda: "step=3" in page.url, "the address bar to link step 3", 15, poll=0.5)
            page.screenshot(path=str(ARTIFACTS / "classroom-presenter.png"))
            assert page.locator("[data-testid='stException']").count() == 0
            assert not outside, f"fetched from outside the server: {outside}"
        finally:
            browser.close()
