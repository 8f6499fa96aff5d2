"""The app through Streamlit's AppTest: every page with an empty store and with real runs,
the Search form's inline validation, Start/Stop/Resume through the page's widgets, and the
user-error paths (unknown run, failed run, corrupt upload, mixed CNN/RNN comparison).

The pages render recorded runs written straight into a store (tests/fake_runs.py: a CNN and
an RNN run, no training); the failed run is a real run_search on missing data, which fails
before any training. Start/Stop/Resume train for real: that is what those tests are about.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fake_runs import fake_run
from helpers import app_test, synced_widget, tiny_config, wait_until
from streamlit.testing.v1 import AppTest

from core.insight.compare import IMAGENET_NET, PROXY_NET, cost_columns
from core.insight.draw import NO_DOT, svg_problem
from core.search.config import preset_config
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("views/search.py", "views/explorer.py", "views/tradeoffs.py", "views/compare.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A store with a failed run (missing data), an RNN demo run and a CNN demo run (newest)."""
    path = tmp_path_factory.mktemp("app") / "runs.db"
    store = Store(path)
    cfg = tiny_config("cnn", data="cifar10:/nonexistent/cifar")
    # the failed run's data is gone by the time it runs (create_run itself would refuse it)
    ids = {"failed": store.create_run("cnn", cfg.to_dict(), cfg.expected_steps())}
    run_search(store, ids["failed"])
    ids["rnn"] = fake_run(store, nodes=5, steps=2, k=2, task="rnn", keep_fraction=0.5)
    ids["cnn"] = fake_run(store, nodes=5, steps=2, k=2, keep_fraction=0.5)
    assert store.get_run(ids["failed"]).status == RunStatus.FAILED
    assert (
        store.get_run(ids["cnn"]).status == RunStatus.FINISHED
        and store.get_run(ids["rnn"]).status == RunStatus.FINISHED
    )
    return {"path": path, "store": store, **ids}


def _open(at: AppTest, page: str, run_id: int | None = None) -> AppTest:
    """Run the app, pick `run_id` in the sidebar, then show `page`."""
    at.run()
    if run_id is not None:
        at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in (at.markdown, at.caption, at.info, at.error, at.warning, at.subheader, at.title)
        for e in kind
    ]
    return "\n".join(str(p) for p in parts)


def _svgs(at: AppTest) -> list[str]:
    """The DAG drawings on the page (inline SVG in markdown elements)."""
    return [m.value for m in at.main.markdown if "<svg class='dag'" in m.value]


def _downloads(at: AppTest) -> set[str]:
    return {b.label for b in at.get("download_button")}


# ----- rendering ---------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_pages_render_with_an_empty_store(monkeypatch, tmp_path, page) -> None:
    at = _open(app_test(monkeypatch, tmp_path / "empty.db"), page)
    assert not at.error
    text = _texts(at)
    assert str(tmp_path / "empty.db") in text  # the sidebar names the store in use
    expected = {
        "views/search.py": "No run selected yet",
        "views/explorer.py": "No run to explore yet",
        "views/tradeoffs.py": "No run yet",
        "views/compare.py": "ShrinkCNN-A",
    }[page]
    assert expected in text


def test_search_page_shows_the_run(monkeypatch, runs) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/search.py", runs["cnn"])
    assert not at.error
    assert f"Run #{runs['cnn']}" in _texts(at)
    assert at.get("progress")[0].proto.value == 100
    assert _svgs(at)  # the DAG, drawn as inline SVG on the run's fixed layout
    assert {"Genotype JSON", "DAG (DOT)", "Step table (CSV)", "Best genotype JSON"} <= _downloads(at)
    if svg_problem():  # no Graphviz `dot` here: the page says why instead of offering the SVG
        assert "DAG (SVG)" not in _downloads(at) and NO_DOT in _texts(at)
    else:
        assert "DAG (SVG)" in _downloads(at)
    assert "scored best" in _texts(at)  # the last step's reason


def test_search_page_without_graphviz_explains_the_missing_svg(monkeypatch, runs) -> None:
    """What a fresh machine without `dot` sees: the DOT download and one line on the SVG's absence."""
    monkeypatch.setattr("core.insight.draw.shutil.which", lambda name: None)
    at = _open(app_test(monkeypatch, runs["path"]), "views/search.py", runs["cnn"])
    assert not at.error
    assert "DAG (DOT)" in _downloads(at) and "DAG (SVG)" not in _downloads(at)
    assert NO_DOT in _texts(at)


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_explorer_plots_the_curves_of_the_candidate_picked(monkeypatch, runs, kind) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/explorer.py", runs[kind])
    picker = at.selectbox(key="explorer_curve_candidate")
    cands = [c for c in runs["store"].candidates(runs[kind]) if c.history]
    assert len(picker.options) == len(cands) and "step 0" in picker.options[0]
    picker.set_value(0).run()
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    names = {t["name"] for t in spec["data"]}
    quality = {"train_ppl", "val_ppl"} if kind == "rnn" else {"train_acc", "val_acc"}
    assert names == {"train_loss", "val_loss"} | quality
    assert spec["data"][0]["x"] == [r["epoch"] for r in cands[0].history]
    assert not at.exception


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_explorer_steps_through_the_run(monkeypatch, runs, kind) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/explorer.py", runs[kind])
    assert not at.error
    last = len(runs["store"].steps(runs[kind])) - 1
    slider = synced_widget(at.slider, "explorer_step")
    assert slider.max == last and slider.value == last
    assert "scored best" in at.info[0].value
    svg = _svgs(at)[0]
    assert "class='edge removed'" in svg and "data-node='0'" in svg
    assert "class='edge earlier'" in svg  # edges removed at earlier steps, faint by default
    at.toggle(key="explorer_earlier").set_value(False).run()
    assert "class='edge earlier'" not in _svgs(at)[0]
    at.button(key="explorer_prev").click().run()
    assert synced_widget(at.slider, "explorer_step").value == last - 1
    synced_widget(at.slider, "explorer_step").set_value(0).run()
    assert "dense starting DAG" in at.info[0].value
    at.button(key="explorer_next").click().run()
    assert synced_widget(at.slider, "explorer_step").value == 1
    rows = at.main.dataframe[0].value
    assert (rows["chosen"] != "").sum() == 1  # exactly one candidate is marked as the removed one
    assert {"Candidate table (CSV)", "Step table (CSV)", "Genotype JSON", "DAG (DOT)"} <= _downloads(at)
    assert not at.exception


def test_explorer_play_advances_and_stops_at_the_end(monkeypatch, runs) -> None:
    import ui.explorer.steps

    monkeypatch.setattr(ui.explorer.steps, "PLAY_S", 0.2)
    at = _open(app_test(monkeypatch, runs["path"]), "views/explorer.py", runs["cnn"])
    last = synced_widget(at.slider, "explorer_step").value
    at.button(key="explorer_play").click().run()  # at the end: play starts over from step 0
    assert at.button(key="explorer_play").label == "Pause" and synced_widget(at.slider, "explorer_step").value == 0
    for expected in range(1, last + 1):
        time.sleep(0.25)
        at.run()
        assert synced_widget(at.slider, "explorer_step").value == expected
    time.sleep(0.25)
    at.run()
    assert at.button(key="explorer_play").label == "Play" and synced_widget(at.slider, "explorer_step").value == last
    assert not at.exception


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_tradeoffs_follow_the_task_direction(monkeypatch, runs, kind) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/tradeoffs.py", runs[kind])
    assert not at.error
    scatter, series = (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
    assert scatter["layout"]["xaxis"]["type"] == "log"
    reversed_y = scatter["layout"]["yaxis"].get("autorange") == "reversed"
    assert reversed_y == (kind == "rnn")  # perplexity: lower is better, so the axis flips
    names = [t.get("name") for t in scatter["data"]]
    assert {"candidates", "Pareto front", "chosen snapshots"} <= set(names)
    assert any(t.get("name") == "best snapshot" for t in series["data"])
    at.radio(key="tradeoff_cost").set_value("params").run()
    assert not at.exception
    assert "params" in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["title"]["text"]


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_compare_shows_costs_of_one_kind(monkeypatch, runs, kind) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/compare.py", runs[kind])
    assert not at.error
    table = at.main.dataframe[-1].value
    if kind == "cnn":
        proxy_params, proxy_macs = cost_columns(PROXY_NET)
        assert {proxy_params, proxy_macs, "proxy accuracy %"} <= set(table.columns)
        assert cost_columns(IMAGENET_NET)[1] not in table.columns  # costly: only on request
        at.toggle(key="compare_imagenet").set_value(True).run()
        table = at.main.dataframe[-1].value
        params = table.loc[table["genotype"] == "ShrinkCNN-A", cost_columns(IMAGENET_NET)[0]].iloc[0]
        assert 3_600_000 < params < 3_700_000
        assert not at.code  # torchinfo tables cost a forward pass each: only on request
        at.toggle(key="compare_torchinfo").set_value(True).run()
        assert len(at.code) == 2  # a torchinfo summary per genotype
    else:
        assert {"LM params", "cell FLOPs", "vocab"} <= set(table.columns)
        assert table.loc[table["genotype"] == "ShrinkRNN", "LM params"].iloc[0] == 23_000_700
    assert "Edges only one of them has" in _texts(at)


def test_compare_refuses_cnn_with_rnn(monkeypatch, runs) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/compare.py")
    at.selectbox(key="compare0-source").set_value("Preset").run()
    at.selectbox(key="compare0-preset").set_value("shrinkcnn-a").run()
    at.selectbox(key="compare1-source").set_value("Preset").run()
    at.selectbox(key="compare1-preset").set_value("shrinkrnn").run()
    assert not at.exception
    assert any("cannot compare costs of CNN cells" in e.value for e in at.error)
    assert len(_svgs(at)) == 2  # the DAGs are still shown


def test_compare_reports_a_corrupt_upload(monkeypatch, runs) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/compare.py")
    at.selectbox(key="compare1-source").set_value("Upload JSON").run()
    at.file_uploader(key="compare1-upload").set_value(("cell.json", b"{not json", "application/json")).run()
    assert not at.exception
    assert any("cell.json" in e.value and "not valid JSON" in e.value for e in at.error)
    at.file_uploader(key="compare1-upload").set_value(
        (
            "cell.json",
            json.dumps({"kind": "cnn", "ops": ["input", "sep3x3"], "edges": [[1, 0]]}).encode(),
            "application/json",
        )
    ).run()
    assert any("goes backward" in e.value for e in at.error)


# ----- user errors -------------------------------------------------------------------------
def test_no_legacy_pages_folder() -> None:
    """A pages/ folder next to app.py puts Streamlit in its legacy multipage mode on a server's
    first run (a deep link then shows a bare page without the sidebar): pages live in views/."""
    assert not (ROOT / "pages").exists()


def test_corrupt_store_is_one_message(monkeypatch, tmp_path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    at = app_test(monkeypatch, path).run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"cannot open run store {path}: file is not a database"]


def test_unknown_run_in_the_link_is_a_message(monkeypatch, runs) -> None:
    at = app_test(monkeypatch, runs["path"])
    at.query_params["run"] = "999"
    at.run()
    assert not at.exception
    assert any("unknown run 999" in e.value for e in at.error)


def test_progress_and_eta_read_the_run_record(runs) -> None:
    """Progress and ETA count edges to the target (pruning can take several per step)."""
    from dataclasses import replace

    from ui.search.live import eta_seconds, progress_fraction

    store = runs["store"]
    run, steps = store.get_run(runs["cnn"]), store.steps(runs["cnn"])
    assert progress_fraction(run, steps) == 1.0 and eta_seconds(run, steps, [2.0]) is None
    # demo: N=5 (10 edges), keep 0.5 -> target 5; no step cap here.
    live = replace(
        run,
        status=RunStatus.RUNNING,
        config={**run.config, "max_steps": 0, "k": 2},
        progress={"step": 1, "candidate": 1, "k": 2, "edges": 10, "done": []},
    )
    assert progress_fraction(live, steps[:1]) == 0.0
    # 1 candidate left in step 1 (10 -> 9 edges), then 4 steps to reach 5 edges, 2 candidates each.
    assert run.config["keep_fraction"] == 0.5
    assert eta_seconds(live, steps[:1], [2.0, 4.0]) == pytest.approx((1 + 4 * 2) * 3.0)
    assert eta_seconds(live, steps[:1], []) is None


def test_failed_run_says_why_and_offers_resume(monkeypatch, runs) -> None:
    at = _open(app_test(monkeypatch, runs["path"]), "views/search.py", runs["failed"])
    assert any("failed" in e.value and "CIFAR-10 directory not found" in e.value for e in at.error)
    assert at.button(key="live_resume")
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception


def test_form_shows_inline_errors_and_starts_nothing(monkeypatch, tmp_path) -> None:
    path = tmp_path / "form.db"
    at = _open(app_test(monkeypatch, path), "views/search.py")
    at.number_input(key="search.nodes").set_value(1)
    at.number_input(key="search.keep_fraction").set_value(1.5)
    at.text_input(key="search.data").set_value("mnist")
    at.form_submit_button[0].click().run()
    errors = [e.value for e in at.error]
    assert any("nodes must be in 2..16" in e for e in errors)
    assert any("keep fraction must be in [0, 1)" in e for e in errors)
    assert any("unknown dataset 'mnist'" in e for e in errors)
    assert Store(path).list_runs() == []
    at.radio(key="form_task").set_value("rnn").run()  # a new task reloads its preset and clears errors
    assert at.text_input(key="search.data").value == "embedded" and not at.error


def test_start_stop_and_resume_from_the_page(monkeypatch, tmp_path) -> None:
    path = tmp_path / "live.db"
    at = _open(app_test(monkeypatch, path), "views/search.py")
    assert at.selectbox(key="form_preset").value == "demo"
    for key, value in (("search.nodes", 3), ("search.k", 2), ("search.epochs", 3), ("search.max_steps", 1)):
        at.number_input(key=key).set_value(value)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    store = Store(path)
    (run,) = store.list_runs()
    assert run.status in (RunStatus.QUEUED, RunStatus.RUNNING) and run.config["nodes"] == 3
    assert at.sidebar.selectbox(key="run_id").value == run.id
    at.button(key="live_stop").click().run()
    wait_until(lambda: store.get_run(run.id).status == RunStatus.STOPPED, "the run to stop", 30)
    at.run()
    at.button(key="live_resume").click().run()
    assert not at.exception
    wait_until(lambda: store.get_run(run.id).status == RunStatus.FINISHED, "the resumed run to finish", 60)
    assert len(store.steps(run.id)) == 2


def test_stop_reaches_a_run_started_elsewhere(monkeypatch, tmp_path) -> None:
    """A run owned by another thread (as the CLI would own it) stops through the store."""
    path = tmp_path / "cli.db"
    store = Store(path)
    run_id = create_run(store, preset_config("cnn", "demo", threads=1, nodes=4, k=4, epochs=3))  # long enough to stop
    worker = threading.Thread(target=run_search, args=(store, run_id), daemon=True)
    worker.start()
    wait_until(lambda: store.get_run(run_id).status == RunStatus.RUNNING, "the run to start", 30)
    at = _open(app_test(monkeypatch, path), "views/search.py")
    at.button(key="live_stop").click().run()
    wait_until(lambda: store.get_run(run_id).status == RunStatus.STOPPED, "the run to stop", 30)
    worker.join(10)
    at.run()
    assert at.button(key="live_resume") and not at.exception


def test_the_app_keeps_one_store_object_per_file(tmp_path, monkeypatch):
    """Runs, training jobs and the sample import see one cached store per file (ui.resources.store_at),
    whatever spelling of the path names it; another file gets its own."""
    from ui.resources import get_store, store_at
    from ui.train.job_store import get_job_store, job_store_at

    path = tmp_path / "one.db"
    monkeypatch.setenv("AUTOSHRINK_STORE", str(path))
    store = get_store()
    assert store is get_job_store() is job_store_at(str(path)) is store_at(tmp_path / "." / "one.db")
    assert store_at(tmp_path / "two.db") is not store
    assert store.path == path.resolve()
