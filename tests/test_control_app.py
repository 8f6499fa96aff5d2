"""The random control in the app (AppTest): Trade-offs' grey crosses with their legend entry and
the panel's sentences, the Explorer's and Presenter's sentence at a step whose edge count has a
control, Compare's random-cell source, and the button: in full mode it trains a control in the
Runner's thread; in view mode it is not offered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_runs import fake_control, fake_run
from helpers import APP_TIMEOUT, app_test, synced_widget, wait_until
from streamlit.testing.v1 import AppTest

from core.search.config import preset_config
from core.search.loop import create_run, run_search
from core.store.controls import control_cells, get_control
from core.store.runs import RunStatus, Store
from ui.figures import CONTROL_NAME


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Two finished CNN runs: a recorded one (tests/fake_runs.py) with a control at its last
    snapshot's count, and a tiny trained search without one, whose control the button trains."""
    path = tmp_path_factory.mktemp("control_app") / "runs.db"
    store = Store(path)
    cfg = preset_config(
        "cnn", "demo", nodes=4, k=2, epochs=1, keep_fraction=0.0, max_steps=2, threads=1, noise_seeds=2, control=0
    )
    ids = {"bare": create_run(store, cfg), "with": fake_run(store, nodes=4, steps=2, k=2, noise_seeds=2)}
    assert run_search(store, ids["bare"]) == RunStatus.FINISHED
    last = store.steps(ids["with"])[-1]
    fake_control(store, ids["with"], 3, [last.edges])
    return {"path": path, "store": store, "last": last, **ids}


def _open(monkeypatch, path: Path, page: str, run_id: int, view: bool = False) -> AppTest:
    monkeypatch.setenv("AUTOSHRINK_SAMPLES", "off")
    if view:
        monkeypatch.setenv("AUTOSHRINK_MODE", "view")
    at = app_test(monkeypatch, path)
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in (at.markdown, at.caption, at.info) for e in kind)


def test_tradeoffs_draw_the_control_as_grey_crosses_with_a_legend_entry(monkeypatch, runs):
    at = _open(monkeypatch, runs["path"], "views/tradeoffs.py", runs["with"])
    scatter = json.loads(at.get("plotly_chart")[0].proto.spec)
    crosses = [t for t in scatter["data"] if t.get("name") == CONTROL_NAME]
    assert len(crosses) == 1 and crosses[0]["marker"]["symbol"] == "x" and len(crosses[0]["x"]) == 3
    assert crosses[0].get("showlegend", True) is not False
    assert "grey crosses are the random control's cells" in _texts(at)
    assert f"The chosen {runs['last'].edges}-edge cell scores {runs['last'].score:.3f}; 3 random" in _texts(at)
    assert at.button(key="control_start").label == "Run a random control"


def test_a_run_without_control_has_no_crosses(monkeypatch, runs):
    at = _open(monkeypatch, runs["path"], "views/tradeoffs.py", runs["bare"])
    scatter = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert CONTROL_NAME not in [t.get("name") for t in scatter["data"]]
    assert "No control for this run yet" in _texts(at)


def test_explorer_and_presenter_add_the_sentence_at_the_controlled_step_only(monkeypatch, runs):
    last = runs["last"]
    at = _open(monkeypatch, runs["path"], "views/explorer.py", runs["with"])
    assert synced_widget(at.slider, "explorer_step").value == last.step
    sentence = [i.value for i in at.info if "random" in i.value]
    assert len(sentence) == 1 and sentence[0].startswith(f"The chosen {last.edges}-edge cell")
    assert "by more than the noise" in sentence[0]
    synced_widget(at.slider, "explorer_step").set_value(last.step - 1).run()
    assert not [i.value for i in at.info if "random" in i.value]
    at = _open(monkeypatch, runs["path"], "views/presenter.py", runs["with"])
    assert any(f"The chosen {last.edges}-edge cell" in h.proto.body for h in at.get("html"))


def test_compare_offers_a_random_cell(monkeypatch, runs):
    at = _open(monkeypatch, runs["path"], "views/compare.py", runs["with"])
    at.selectbox(key="compare0-source").set_value("Random control cell").run()
    assert not at.exception and at.selectbox(key="compare0-control").options
    assert any(
        f"run{runs['with']}-random" in str(e.value) for e in at.main.markdown
    ) or f"run{runs['with']}-random" in json.dumps([str(d.value) for d in at.main.dataframe])


def test_the_button_trains_a_control_in_full_mode_and_view_mode_does_not_offer_it(monkeypatch, runs, tmp_path):
    at = _open(monkeypatch, runs["path"], "views/tradeoffs.py", runs["bare"], view=True)
    assert not [b for b in at.button if b.label == "Run a random control"]
    monkeypatch.delenv("AUTOSHRINK_MODE")
    at = _open(monkeypatch, runs["path"], "views/tradeoffs.py", runs["bare"])
    at.number_input(key="control_samples").set_value(1).run()
    at.button(key="control_start").click().run()
    store = runs["store"]
    wait_until(
        lambda: (
            get_control(store, runs["bare"]) is not None
            and get_control(store, runs["bare"]).status == RunStatus.FINISHED
        ),
        "the control to finish",
        APP_TIMEOUT,
    )
    control = get_control(store, runs["bare"])
    assert control.status == RunStatus.FINISHED and len(control_cells(store, runs["bare"])) == len(control.targets)
