"""Classroom mode through AppTest and core: view-only mode (no changing control on any page,
and the core refuses such calls), run housekeeping, one run per double Start, the Explorer
following a live run, the Presenter's links and keys, and the predict-the-edge game.

Runs are written with tests/fake_runs.py (real records, no training), so each test takes
a few seconds; a "live" run is one claimed by this test process and grown step by step.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fake_runs import add_step, fake_run
from helpers import app_test, synced_widget
from streamlit.testing.v1 import AppTest

from core.cell.genotype import edge_str
from core.search.config import SearchConfig, preset_config
from core.search.loop import step_candidates
from core.store.access import MODE_ENV, ReadOnlyError
from core.store.admin import delete_run, rename_run, reset_store
from core.store.jobs import JobStore
from core.store.runs import RunStatus, Store

PAGES = (
    "views/search.py",
    "views/explorer.py",
    "views/presenter.py",
    "views/predict.py",
    "views/tradeoffs.py",
    "views/compare.py",
    "views/train.py",
)
CHANGING = {"Start search", "Stop", "Resume", "Start training", "Rename", "Delete run", "Reset store"}


def _app(monkeypatch, path: Path, view: bool = False) -> AppTest:
    if view:
        monkeypatch.setenv(MODE_ENV, "view")
    else:
        monkeypatch.delenv(MODE_ENV, raising=False)
    return app_test(monkeypatch, path)


def _open(at: AppTest, page: str, run_id: int) -> AppTest:
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {b.label for b in at.get("form_submit_button")}


# ----- roles ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_view_mode_has_no_changing_control(monkeypatch, tmp_path, page) -> None:
    store = Store(tmp_path / "runs.db")
    running = fake_run(store, live=True)  # a live run would offer Stop
    stopped = fake_run(store)
    store.finish(stopped, RunStatus.STOPPED)  # a stopped run would offer Resume
    for run_id in (running, stopped):
        at = _open(_app(monkeypatch, store.path, view=True), page, run_id)
        assert not (_labels(at) & CHANGING), f"{page} offers {_labels(at) & CHANGING} in view mode"
        assert not at.get("form_submit_button") and not at.text_input  # no form, no rename box
        assert "View-only" in " ".join(c.value for c in at.sidebar.caption)


def test_full_mode_offers_the_instructor_controls(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    running = fake_run(store, live=True)
    at = _open(_app(monkeypatch, store.path), "views/search.py", running)
    assert {"Start search", "Stop", "Rename", "Delete run", "Reset store"} <= _labels(at)
    assert at.button(key="manage_delete").disabled  # never a running run


def test_core_refuses_changes_in_view_mode(monkeypatch, tmp_path) -> None:
    from core.runner.threads import Runner

    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store)
    monkeypatch.setenv(MODE_ENV, "view")
    runner, cfg = Runner(), preset_config("cnn", "demo")
    calls = [
        lambda: runner.start_search(store, cfg),
        lambda: runner.resume_search(store, run_id),
        lambda: runner.stop(store, run_id),
        lambda: runner.start_train(store, store.steps(run_id)[-1].genotype, {}),
        lambda: runner.resume_train(store, 1),
        lambda: store.create_run("cnn", cfg.to_dict(), 3),
        lambda: store.request_stop(run_id),
        lambda: rename_run(store, run_id, "x"),
        lambda: delete_run(store, run_id),
        lambda: reset_store(store),
        lambda: JobStore(store.path).create_job("cnn", store.steps(run_id)[-1].genotype, {}),
    ]
    for call in calls:
        with pytest.raises(ReadOnlyError, match="view-only mode"):
            call()
    assert [r.id for r in store.list_runs()] == [run_id] and store.get_run(run_id).name == ""


def test_rename_delete_and_reset_from_the_sidebar(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    keep, gone, live = fake_run(store), fake_run(store), fake_run(store, live=True)
    at = _open(_app(monkeypatch, store.path), "views/explorer.py", keep)
    at.sidebar.text_input(key=f"manage_name_{keep}").input("Monday demo").run()
    at.sidebar.button(key="manage_rename").click().run()
    assert store.get_run(keep).name == "Monday demo"
    assert any("Monday demo" in c.value for c in at.sidebar.caption)
    at.sidebar.selectbox(key="run_id").set_value(gone).run()
    assert at.sidebar.button(key="manage_delete").disabled  # not confirmed yet
    at.sidebar.checkbox(key="manage_confirm_delete").check().run()
    at.sidebar.button(key="manage_delete").click().run()
    assert [r.id for r in store.list_runs()] == [live, keep] and not store.steps(gone)
    at.sidebar.button(key="manage_reset").click().run()  # not confirmed: nothing happens
    assert len(store.list_runs()) == 2
    at.sidebar.text_input(key="manage_reset_word").input("reset").run()
    at.sidebar.button(key="manage_reset").click().run()
    assert len(store.list_runs()) == 2  # a live run blocks the reset ...
    assert any("cannot reset while run" in c.value for c in at.sidebar.caption)
    store.finish(live, RunStatus.STOPPED)
    at.sidebar.text_input(key="manage_reset_word").input("reset").run()
    at.sidebar.button(key="manage_reset").click().run()
    assert store.list_runs() == []  # ... and once it is stopped, the store is emptied
    assert not at.exception


def test_double_start_creates_one_run(monkeypatch, tmp_path) -> None:
    """Two Start clicks (two script runs, same settings) while the first run is queued."""
    import core.runner.threads as threads

    release = threading.Event()
    monkeypatch.setattr(threads, "run_search", lambda store, run_id, observer, stop: release.wait(30))
    at = _app(monkeypatch, tmp_path / "runs.db").run()
    try:
        at.get("form_submit_button")[0].click().run()
        at.get("form_submit_button")[0].click().run()
        assert len(Store(tmp_path / "runs.db").list_runs()) == 1
    finally:
        release.set()


# ----- live following --------------------------------------------------------------------
def test_explorer_follows_a_live_run_unless_the_student_stepped_back(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store, steps=2, live=True)
    at = _open(_app(monkeypatch, store.path), "views/explorer.py", run_id)

    def slider():
        return synced_widget(at.slider, "explorer_step")

    def follow():
        return synced_widget(at.toggle, "explorer_follow")

    assert slider().max == 2 and slider().value == 2
    assert any("badge[" in m.value and "live · " in m.value for m in at.markdown)  # the live badge
    add_step(store, run_id)
    at.run()  # what the fragment's timer does every REFRESH_S
    assert slider().max == 3 and slider().value == 3  # followed
    slider().set_value(1).run()
    assert follow().value is False  # stepping back stops following
    add_step(store, run_id)
    at.run()
    assert slider().max == 4 and slider().value == 1  # not yanked
    follow().set_value(True).run()
    assert slider().value == 4


def test_a_step_the_server_moves_is_a_new_slider_so_stale_browser_values_are_ignored(monkeypatch, tmp_path) -> None:
    """ui.synced: the browser's timer reruns carry every widget's value; one sent just after a
    click still holds the value from before it. The slider the click moved has a new key, so
    that value names a widget that is gone; a change the student makes keeps the same widget."""
    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store, steps=3, live=True)
    at = _open(_app(monkeypatch, store.path), "views/explorer.py", run_id)
    before = synced_widget(at.slider, "explorer_step").key
    at.button(key="explorer_prev").click().run()
    moved = synced_widget(at.slider, "explorer_step")
    assert moved.value == 2 and moved.key != before  # the server moved it: a new widget
    assert synced_widget(at.toggle, "explorer_follow").value is False
    moved.set_value(1).run()
    assert synced_widget(at.slider, "explorer_step").key == moved.key  # the student moved it: the same one
    assert synced_widget(at.slider, "explorer_step").value == 1


# ----- presenter -------------------------------------------------------------------------
def test_presenter_opens_a_linked_step_and_steps_with_the_buttons(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store, steps=3)
    at = _app(monkeypatch, store.path)
    at.query_params.update({"run": str(run_id), "page": "presenter", "step": "1"})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("step 1 of 3" in m.value for m in at.markdown)
    removed = edge_str(store.steps(run_id)[1].removed)
    assert any(f"removed {removed}" in m.value and "<svg class='dag'" in m.value for m in at.markdown)
    assert at.button(key="presenter_prev").proto.shortcut  # the arrow keys
    at.button(key="presenter_next").click().run()
    assert any("step 2 of 3" in m.value for m in at.markdown) and at.query_params["step"] in ("2", ["2"])
    assert at.get("plotly_chart")  # the candidates as score bars


# ----- predict the edge --------------------------------------------------------------------
def test_predict_scores_picks_on_a_recorded_run(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store, steps=2, k=3)
    steps = store.steps(run_id)
    at = _open(_app(monkeypatch, store.path), "views/predict.py", run_id)
    assert not at.get("plotly_chart")  # no scores before the pick
    assert at.button(key="predict_lock").disabled
    cands = [c for c in store.candidates(run_id, 1)]
    wrong = next(c.edge for c in cands if c.edge != steps[1].removed)
    at.button_group(key=f"predict_pick_{run_id}_1").set_value(wrong).run()
    at.button(key="predict_lock").click().run()
    ranked = sorted(cands, key=lambda c: -c.score)
    rank = 1 + [c.edge for c in ranked].index(wrong)
    assert any(f"ranked {rank} of 3" in w.value for w in at.warning)
    assert at.metric[0].value == "0 / 1" and at.get("plotly_chart")
    at.button(key="predict_next").click().run()
    at.button_group(key=f"predict_pick_{run_id}_2").set_value(steps[2].removed).run()
    at.button(key="predict_lock").click().run()
    assert any("Spot on" in s.value for s in at.success)
    assert at.metric[0].value == "1 / 2" and at.metric[1].value == f"{(rank + 1) / 2:.1f}"
    assert not at.exception


def test_predict_on_a_live_run_picks_before_the_step_commits(monkeypatch, tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = fake_run(store, steps=0, k=3, live=True)
    cfg = SearchConfig.from_dict(store.get_run(run_id).config)
    upcoming = step_candidates(store.steps(run_id)[0].genotype, cfg.k, cfg.seed, 1)
    at = _open(_app(monkeypatch, store.path), "views/predict.py", run_id)
    at.button_group(key=f"predict_pick_{run_id}_1").set_value(upcoming[0]).run()
    at.button(key="predict_lock").click().run()
    assert any("training now" in i.value for i in at.info) and at.metric[0].value == "0 / 0"
    step = add_step(store, run_id)  # the search commits step 1
    at.run()
    assert at.metric[0].value == ("1 / 1" if step.removed == upcoming[0] else "0 / 1")
    assert at.get("plotly_chart") and not at.exception


def test_a_followed_run_that_ends_between_refreshes_shows_its_last_step(tmp_path, monkeypatch) -> None:
    """The Explorer follows a live run; when the run's last step commits and the run ends before
    the next look, the page lands on that last step, not the one before it."""
    from core.store.runs import RunStatus

    path = tmp_path / "follow.db"
    store = Store(path)
    run_id = fake_run(store, steps=2, live=True)
    at = app_test(monkeypatch, path)
    at.run()
    at.switch_page("views/explorer.py").run()
    assert synced_widget(at.slider, "explorer_step").value == 2
    add_step(store, run_id)
    store.finish(run_id, RunStatus.FINISHED)
    at.run()
    assert not at.exception and synced_widget(at.slider, "explorer_step").value == 3


def _next_button_script() -> None:
    import streamlit as st

    from ui.step_page import step_button

    def move(target: int, last: int) -> None:
        st.session_state.setdefault("moves", []).append((target, last))

    step_button(st, "p", 1, move, 2, 4, "arrow_forward")


def test_a_step_button_carries_the_step_it_leads_to_so_a_repeated_trigger_cannot_skip() -> None:
    """Seen under load in the Presenter: one Right press stepped 2 -> 4, because a live refresh
    re-sent the press and the "+1" callback ran twice. The callback now gets the target step."""
    at = AppTest.from_function(_next_button_script).run()
    at.button(key="p_next").click().run()
    assert at.session_state["moves"] == [(3, 4)]
