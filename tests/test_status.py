"""Statuses are enums whose stored values did not change; records carry them typed."""

from __future__ import annotations

from core.result import CandidateStatus
from core.search.config import preset_config
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store


def test_stored_values_are_the_old_strings() -> None:
    assert [s.value for s in RunStatus] == ["queued", "running", "finished", "stopped", "failed", "interrupted"]
    assert [s.value for s in CandidateStatus] == ["ok", "failed", "stopped"]


def test_live_and_resumable_split_the_statuses() -> None:
    assert {s for s in RunStatus if s.live} == {RunStatus.QUEUED, RunStatus.RUNNING}
    assert {s for s in RunStatus if s.resumable} == {RunStatus.STOPPED, RunStatus.FAILED, RunStatus.INTERRUPTED}
    assert not RunStatus.FINISHED.live and not RunStatus.FINISHED.resumable


def test_records_read_back_typed(tmp_path) -> None:
    store = Store(tmp_path / "runs.db")
    run_id = create_run(
        store, preset_config("cnn", "demo", nodes=3, k=1, epochs=1, max_steps=1, threads=1, noise_seeds=1)
    )
    assert store.get_run(run_id).status is RunStatus.QUEUED
    assert run_search(store, run_id) == RunStatus.FINISHED
    run = store.get_run(run_id)
    assert run.status is RunStatus.FINISHED and run.status == "finished"
    assert all(isinstance(c.status, CandidateStatus) for c in store.candidates(run_id, 1))
