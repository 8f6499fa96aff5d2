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
    app_server,
    browser_page,
    dag_title,
    expect,
    press_until,
    settled,
)

from core.store.runs import Store

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")

NODES_JS = """() => Object.fromEntries([...document.querySelectorAll("svg.dag g[data-node]")].map(g => {
    const svg = g.ownerSVGElement.getBoundingClientRect(), box = g.getBoundingClientRect();
    return [g.dataset.node, [g.getAttribute("transform"), Math.round(box.x - svg.x), Math.round(box.y - svg.y)]];
}))"""


@pytest.fixture
def live_server(tmp_path: Path):
    store = Store(tmp_path / "live.db")
    run_id = fake_run(store, nodes=8, steps=3, k=5, live=True)
    with app_server(store.path, tmp_path / "server.log", AUTOSHRINK_MODE=None) as base:
        yield base, store, run_id


def _title_has(page, text: str) -> bool:
    return text in dag_title(page)


def _press(page, key: str, title: str, focus) -> None:
    """Press `key` until the DAG is titled `title` (press_until: a key pressed in the instant
    a live refresh reruns the view can be lost, and is pressed again). `focus` first puts the
    focus on the page, not a widget, before each press, as a person would."""
    press_until(page, key, lambda: _title_has(page, title), title, focus=focus, tries=2)


def test_keyboard_steps_a_live_run_and_nodes_stay_put(live_server) -> None:
    base, store, run_id = live_server
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
