"""The app with recorded samples: listed out of the box, read-only, open with no computation,
and every run offers its bundle for download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import app_test, tiny_config

from core.search.bundle import bundle_bytes
from core.search.loop import create_run, run_search
from core.store.controls import control_cells, get_control
from core.store.runs import RunStatus, Store, best_of
from ui.figures import CONTROL_NAME

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """A folder holding one recorded bundle (a tiny digits search with measured noise)."""
    work = tmp_path_factory.mktemp("samples")
    store = Store(work / "made.db")
    run_id = create_run(store, tiny_config(keep_fraction=0.0, noise_seeds=2))
    store.set_meta(run_id, {"command": "python -m core search cnn (test sample)"})
    assert run_search(store, run_id) == RunStatus.FINISHED
    folder = work / "runs"
    folder.mkdir()
    (folder / "tiny.json.gz").write_bytes(bundle_bytes(store, run_id))
    return folder


def test_samples_are_listed_and_open_without_computation(monkeypatch, tmp_path, samples) -> None:
    store_path = tmp_path / "fresh.db"
    monkeypatch.setenv("AUTOSHRINK_SAMPLES", str(samples))
    at = app_test(monkeypatch, store_path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.sidebar.selectbox(key="run_id")
    assert any("sample" in str(o) for o in picker.options)
    captions = "\n".join(c.value for c in at.sidebar.caption)
    assert "Recorded sample, read-only" in captions
    assert "test sample" in "\n".join(c.value for c in at.caption)  # the Search page: how it was made
    assert "Run bundle" in {b.label for b in at.get("download_button")}
    assert "How AutoShrink works" in " ".join(e.label for e in at.expander)
    at.switch_page("views/explorer.py").run()
    assert not at.exception and not at.error
    assert "scored best" in "\n".join(i.value for i in at.info)  # the last step's reason, from the records
    at.switch_page("views/tradeoffs.py").run()
    assert not at.exception and not at.error
    assert "Measured noise" in "\n".join(c.value for c in at.caption)
    assert "Resume" not in {b.label for b in at.button}
    assert "Run a random control" not in {b.label for b in at.button}  # read-only: no control trains on it
    assert "a recorded sample is read-only here" in "\n".join(c.value for c in at.caption)
    assert len(Store(store_path).list_runs()) == 1  # imported once, however often the app reruns


def test_first_look_is_the_users_newest_run_else_the_cnn_sample(monkeypatch, tmp_path) -> None:
    """The shipped samples import in file order (the RNN one, ~1,000 perplexity, last): a fresh
    store still opens on the CNN sample, and on the user's own run once there is one."""
    shipped = sorted((ROOT / "assets" / "runs").glob("*.json.gz"))
    assert {p.name.split("-")[0] for p in shipped} >= {"cnn", "rnn"}
    store_path = tmp_path / "fresh.db"
    monkeypatch.delenv("AUTOSHRINK_SAMPLES", raising=False)
    at = app_test(monkeypatch, store_path)
    at.run()
    store = Store(store_path)
    chosen = store.get_run(at.sidebar.selectbox(key="run_id").value)
    assert chosen.task == "cnn" and chosen.meta.get("sample")
    assert max(r.id for r in store.list_runs()) != chosen.id  # not simply the newest row
    own = create_run(store, tiny_config("rnn", k=1, max_batches=1))
    assert run_search(store, own) == RunStatus.FINISHED
    fresh = app_test(monkeypatch, store_path)
    fresh.run()
    assert fresh.sidebar.selectbox(key="run_id").value == own


def test_each_shipped_sample_carries_its_random_control_and_trade_offs_draws_it(monkeypatch, tmp_path) -> None:
    """A recorded sample is read-only, so it ships with its control: random cells at its best
    snapshot's edge count, trained as its candidates were. The first look's Trade-offs page
    draws them as crosses and says how the chosen cell compares."""
    store_path = tmp_path / "fresh.db"
    monkeypatch.delenv("AUTOSHRINK_SAMPLES", raising=False)
    at = app_test(monkeypatch, store_path)
    at.run()
    store = Store(store_path)
    samples = store.list_runs()
    assert {r.task for r in samples} == {"cnn", "rnn"}
    for run in samples:
        control, cells = get_control(store, run.id), control_cells(store, run.id)
        best = best_of(store.steps(run.id))
        assert control is not None and control.status == RunStatus.FINISHED, run.id
        assert len(cells) >= 5 and {c.target for c in cells} == {best.edges}
        assert all(c.status == "ok" and c.score is not None for c in cells)
    at.switch_page("views/tradeoffs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    traces = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert any(t.get("name") == CONTROL_NAME for t in traces)
    assert "random 10-edge cells" in "\n".join(str(m.value) for m in at.markdown)
