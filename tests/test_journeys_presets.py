"""Every preset of every task really starts: a run is created and its first step commits,
from the CLI and from the app's Search page, on the preset's default data, or on the
../shared copy where the default is a download (skipped, with the reason, without it).

Scaled down with the documented knobs only (k, epochs, max steps, max batches).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from helpers import CIFAR_DIR, PTB_DIR, app_test

from core.cli.main import main
from core.search.config import PRESETS, SearchConfig, preset_config
from core.search.evaluators.pool import pool_size
from core.store.runs import RunStatus, Store

SHARED_DATA = {"cifar10": f"cifar10:{CIFAR_DIR}", "ptb-proxy": f"ptb-proxy:{PTB_DIR}"}
SCALE = {"k": 1, "epochs": 1, "max_steps": 1, "max_batches": 1, "control": 0}  # control: its own tests
ALL = sorted(PRESETS)
TIMEOUT = 240


def _data(task: str, preset: str) -> str:
    """The preset's data where it ships with the project, else the ../shared copy (or skip)."""
    spec = preset_config(task, preset).data_spec
    if not spec.downloads:
        return str(spec)
    shared = SHARED_DATA[spec.source.value]
    if not Path(shared.split(":", 1)[1]).is_dir():
        pytest.skip(f"{task} {preset} downloads {spec}; ../shared has no copy to start from offline")
    return shared


def _first_step_committed(store: Store, run_id: int) -> None:
    run, steps = store.get_run(run_id), store.steps(run_id)
    assert run.status == RunStatus.FINISHED, (run.status, run.error)
    assert [s.step for s in steps] == [0, 1]
    assert any(c.score is not None for c in store.candidates(run_id, 1))


def test_there_are_presets_for_both_tasks() -> None:
    assert {task for task, _ in ALL} == {"cnn", "rnn"} and len(ALL) >= 4


@pytest.mark.parametrize("task, preset", ALL)
def test_preset_starts_from_the_cli(task: str, preset: str, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SCALE.items()]
    code = main(["search", task, "--preset", preset, "--data", _data(task, preset), *flags, "--store", str(db)])
    assert code == 0
    _first_step_committed(Store(db), 1)


@pytest.mark.parametrize("task, preset", ALL)
def test_preset_starts_from_the_search_page(task: str, preset: str, tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "runs.db"
    monkeypatch.setenv("AUTOSHRINK_SAMPLES", "off")
    at = app_test(monkeypatch, db, TIMEOUT)
    at.run()
    at.switch_page("views/search.py").run()
    at.radio(key="form_task").set_value(task).run()
    at.selectbox(key="form_preset").set_value(preset).run()
    at.text_input(key="search.data").set_value(_data(task, preset))
    for field, value in SCALE.items():
        at.number_input(key=f"search.{field}").set_value(value)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = Store(db)
    (run,) = store.list_runs()
    assert run.config["preset"] == preset and run.config["task"] == task
    deadline = time.time() + TIMEOUT
    while store.get_run(run.id).status != RunStatus.FINISHED and time.time() < deadline:
        time.sleep(0.5)
    _first_step_committed(store, run.id)


def test_the_app_searches_with_its_default_evaluator(tmp_path: Path, monkeypatch) -> None:
    """The other tests cap the pool at one worker (conftest) to spare the suite's two cores; a
    user's app does not: Start on the Search page trains with the pool's worker processes."""
    monkeypatch.delenv("AUTOSHRINK_WORKERS", raising=False)
    db = tmp_path / "runs.db"
    at = app_test(monkeypatch, db, TIMEOUT)
    at.run()
    at.switch_page("views/search.py").run()
    for field, value in {**SCALE, "nodes": 3, "k": 2}.items():
        at.number_input(key=f"search.{field}").set_value(value)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    store = Store(db)
    (run,) = store.list_runs()
    deadline = time.time() + TIMEOUT
    while store.get_run(run.id).status != RunStatus.FINISHED and time.time() < deadline:
        time.sleep(0.5)
    _first_step_committed(store, run.id)
    expected = "pool" if pool_size(SearchConfig.from_dict(run.config), torch.device("cpu"))[0] > 1 else "batched"
    assert store.get_run(run.id).evaluator == expected
