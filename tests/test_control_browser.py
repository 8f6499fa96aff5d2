"""Trade-offs in a real browser with a random control: the grey crosses and their legend entry
are drawn (plotly's SVG), no exception box; the screenshot lands in
artifacts/tradeoffs-control.png for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    _goto,
    _no_exception,
    app_server,
    browser_page,
)

from core.search.config import preset_config
from core.search.control import run_control
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store
from ui.figures import CONTROL_NAME

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not found at {CHROMIUM}")


def test_tradeoffs_shows_the_control_crosses_in_the_browser(tmp_path: Path) -> None:
    store_path = tmp_path / "browser.db"
    store = Store(store_path)
    cfg = preset_config(
        "cnn", "demo", nodes=5, k=3, epochs=1, keep_fraction=0.0, max_steps=5, threads=1, noise_seeds=2, control=0
    )
    run_id = create_run(store, cfg)
    assert run_search(store, run_id) == RunStatus.FINISHED
    assert run_control(store, run_id, 4) == RunStatus.FINISHED
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        app_server(store_path, tmp_path / "server.log", AUTOSHRINK_SAMPLES="off") as base,
        browser_page(1400, 1100) as page,
    ):
        page.goto(base)
        page.locator("[data-testid='stSidebarNav']").wait_for(timeout=60_000)
        _goto(page, base, "Trade-offs")
        page.locator(".legendtext", has_text=CONTROL_NAME).first.wait_for(timeout=30_000)
        assert page.locator(".scatterlayer .point").count() > 0
        assert page.get_by_text("Run a random control").count() >= 1
        assert page.get_by_text("by more than the noise").count() >= 1
        _no_exception(page, "tradeoffs-control")
