"""Run bundles: a whole run out of one store and into another, and hostile files refused."""

from __future__ import annotations

import gzip
import json
import sqlite3

import pytest

from core.cli.main import main
from core.search import bundle as bundles
from core.search.bundle import BundleError, bundle_bytes, import_bundle, import_samples, read_bundle
from core.search.config import preset_config
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store

TINY = dict(nodes=4, k=2, epochs=1, keep_fraction=0.0, threads=1, max_steps=2, noise_seeds=2)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small finished digits search with measured noise."""
    store = Store(tmp_path_factory.mktemp("src") / "runs.db")
    run_id = create_run(store, preset_config("cnn", "demo", **TINY))
    store.set_meta(run_id, {"command": "python -m core search cnn --preset demo (test)"})
    assert run_search(store, run_id) == RunStatus.FINISHED
    return store, run_id


def _records(store: Store, run_id: int) -> tuple:
    steps = [s.to_dict() | {"created_at": s.created_at} for s in store.steps(run_id)]
    cands = [
        c.to_dict() | {"genotype": c.genotype.to_dict(), "history": list(c.history)} for c in store.candidates(run_id)
    ]
    return steps, cands


def _dump(store: Store) -> list:
    """Everything in a store file, to show that a refused import changed nothing."""
    con = sqlite3.connect(store.path)
    try:
        return [con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("runs", "steps", "candidates")]
    finally:
        con.close()


def test_round_trip_keeps_every_record_under_a_new_id(source, tmp_path) -> None:
    store, run_id = source
    target = Store(tmp_path / "other.db")
    first = import_bundle(target, bundle_bytes(store, run_id), "a.json.gz")
    second = import_bundle(target, bundle_bytes(store, run_id, compress=False), "a.json")
    assert second != first  # a second import is a new run; the first is untouched
    for new_id in (first, second):
        assert _records(target, new_id) == _records(store, run_id)
        old, new = store.get_run(run_id), target.get_run(new_id)
        assert (new.task, new.status, new.config, new.device, new.evaluator, new.noise) == (
            old.task,
            old.status,
            old.config,
            old.device,
            old.evaluator,
            old.noise,
        )
        assert new.meta["bundle"]["command"] == old.meta["command"]
        assert new.meta["bundle"]["wall_s"] == round(old.finished_at - old.started_at, 1)
    assert any(len(c["history"]) >= 1 for c in _records(target, first)[1])


def test_cli_export_and_import_print_the_new_id(source, tmp_path, capsys) -> None:
    store, run_id = source
    out = tmp_path / "run.json.gz"
    assert main(["export-run", str(run_id), "--store", str(store.path), "--out", str(out)]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b" and out.stat().st_size < 1_000_000
    capsys.readouterr()
    target = tmp_path / "t.db"
    Store(target).create_run("cnn", preset_config("cnn", "demo").to_dict(), 3)  # id 1 is taken
    assert main(["import-run", str(out), "--store", str(target), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["run_id"] == 2 and printed["steps"] == len(store.steps(run_id))


def _tampered(source, change) -> bytes:
    store, run_id = source
    doc = json.loads(bundle_bytes(store, run_id, compress=False))
    change(doc)
    return json.dumps(doc).encode()


def _set(path, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


HOSTILE = {
    "truncated gzip": lambda s: bundle_bytes(*s)[:200],
    "truncated json": lambda s: bundle_bytes(*s, compress=False)[:-40],
    "not json": lambda s: b"\x00\x01binary",
    "wrong version": lambda s: _tampered(s, _set(["version"], 99)),
    "no mark": lambda s: _tampered(s, _set(["format"], "something-else")),
    "edited cell": lambda s: _tampered(s, _set(["steps", 1, "genotype", "edges"], [[0, 1]])),
    "edited choice": lambda s: _tampered(s, _set(["steps", 1, "score"], 9.0)),
    "bad edge": lambda s: _tampered(s, _set(["candidates", 3, "edge"], [5, "x"])),
    "bad number": lambda s: _tampered(s, _set(["candidates", 3, "accuracy"], "high")),
    "unknown setting": lambda s: _tampered(s, _set(["run", "config", "evil"], 1)),
    "orphan candidate": lambda s: _tampered(s, lambda d: d["candidates"].append({**d["candidates"][-1], "step": 99})),
    "gzip bomb": lambda s: gzip.compress(b" " * (bundles.MAX_JSON_BYTES + 10)),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bundles_are_refused_and_change_nothing(source, tmp_path, case) -> None:
    target = Store(tmp_path / "t.db")
    import_bundle(target, bundle_bytes(*source), "good")
    before = _dump(target)
    with pytest.raises(BundleError) as err:
        import_bundle(target, HOSTILE[case](source), "evil.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("evil.json: ")
    assert _dump(target) == before


def test_oversized_file_is_refused_by_the_cli_in_one_line(source, tmp_path, capsys, monkeypatch) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (bundles.MAX_FILE_BYTES + 1))
    target = tmp_path / "t.db"
    assert main(["import-run", str(big), "--store", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "over the" in err and "limit" in err
    assert Store(target).list_runs() == []


def test_samples_import_once(source, tmp_path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "one.json.gz").write_bytes(bundle_bytes(*source))
    target = Store(tmp_path / "t.db")
    assert len(import_samples(target, folder)) == 1
    assert import_samples(target, folder) == []  # already there: nothing added
    run = target.list_runs()[0]
    assert run.meta["sample"] and run.status == RunStatus.FINISHED


def test_shipped_recorded_runs_read_cleanly() -> None:
    """Every bundle in assets/runs/ passes the import checks and is small."""
    shipped = sorted(bundles.SAMPLE_DIR.glob("*.json*"))
    assert shipped, f"no recorded runs in {bundles.SAMPLE_DIR}"
    for path in shipped:
        assert path.stat().st_size < 1_000_000, path
        b = read_bundle(path.read_bytes(), path.name)
        assert b.meta.get("command") and b.meta.get("device") and b.meta.get("wall_s"), path
