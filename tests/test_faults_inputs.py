"""Fault suite, part 1: corrupt and hostile input of every kind the product reads.

Each case feeds one bad input to the CLI (in this process: the console's code path without
torch's start-up per case) and asserts the one clear `error:` line, the exit code (2: refused
before anything was recorded; 1: a recorded run or job failed and says why), and that what
the store had committed before is still there. Classes: genotype JSON, command-line values,
CIFAR-10 batches, PTB corpora, image folders, checkpoints, store files, `export --out`, and
(placeholder) run bundles.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_kit import TINY_SEARCH, cli, committed_run, error_line, only_line, snapshot

from core.cell.genotype import MAX_NAME
from core.cell.presets import load_preset
from core.store.jobs import JobStore
from core.store.runs import RunStatus, Store
from core.training.config import train_config
from core.training.engine import create_job


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store that already holds a committed run: every fault below must leave it as it was."""
    s = Store(tmp_path / "runs.db")
    committed_run(s)
    return s


def _unchanged(store: Store, before: list) -> None:
    assert snapshot(store)[-len(before) :] == before


# ----- genotype JSON --------------------------------------------------------------------------
CELL = '{"kind": "cnn", "ops": ["input", "sep3x3", "conv1x1"], "edges": %s%s}'
GENOTYPES = {
    "deep nesting": ("[" * 100_000, "nests too deeply"),
    "bool as node": (CELL % ("[[true, 2], [0, 1]]", ""), "integer pairs"),
    "negative node": (CELL % ("[[0, -1]]", ""), "edge [0, -1] names a node outside"),
    "backward edge": (CELL % ("[[2, 1]]", ""), "goes backward"),
    "huge name": (CELL % ("[[0, 1]]", ', "name": "%s"' % ("x" * (MAX_NAME + 1))), f"at most {MAX_NAME}"),
    "name not a string": (CELL % ("[[0, 1]]", ', "name": {"a": 1}'), "'name' must be a string"),
    "not json": ("{kind: cnn", "not valid JSON"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00", "cannot be read"),
    "a list": ("[1, 2]", "must hold a JSON object"),
    "unknown op": (CELL.replace("conv1x1", "maxpool") % ("[[0, 1]]", ""), "unknown op 'maxpool'"),
}


@pytest.mark.parametrize("case", GENOTYPES)
def test_bad_genotype_file_is_one_line(tmp_path, store, capsys, case):
    content, fragment = GENOTYPES[case]
    path = tmp_path / "cell.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(store)
    for args in (["summary", path], ["train", path, "--store", store.path]):
        code, err = cli(capsys, *args)
        assert code == 2 and fragment in only_line(err), (args, err)
    _unchanged(store, before)
    assert JobStore(store.path).list_jobs() == []


def test_missing_and_directory_genotype_files_are_one_line(tmp_path, capsys):
    for path, fragment in ((tmp_path / "nope.json", "does not exist"), (tmp_path, "is a directory")):
        code, err = cli(capsys, "summary", path)
        assert code == 2 and fragment in only_line(err)


# ----- command-line values: refused before a run or job exists -----------------------------
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["search", "cnn", "--lr", "inf"], "lr must be a finite number"),
        (["search", "rnn", "--lr", "nan"], "lr must be a finite number"),
        (["search", "cnn", "--keep-fraction", "inf"], "keep fraction must be a finite number"),
        (["search", "cnn", "--data", "mnist"], "unknown dataset 'mnist'"),
        (["search", "rnn", "--data", "wikitext"], "unknown corpus 'wikitext'"),
        (["train", "preset:shrinkcnn-a", "--lr", "inf"], "lr must be a finite number"),
        (["train", "preset:shrinkrnn", "--data", "wikitext"], "unknown corpus 'wikitext'"),
    ],
)
def test_bad_values_are_refused_before_a_run_exists(store, capsys, args, fragment):
    before = snapshot(store)
    code, err = cli(capsys, *args, "--store", store.path)
    assert code == 2 and fragment in only_line(err)
    assert snapshot(store) == before and JobStore(store.path).list_jobs() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA, so --device cuda is valid here")
@pytest.mark.parametrize("command", [["search", "cnn"], ["train", "preset:shrinkcnn-a"]])
def test_cuda_without_cuda_is_refused_before_a_run_exists(store, capsys, command):
    before = snapshot(store)
    code, err = cli(capsys, *command, "--device", "cuda", "--store", store.path)
    assert code == 2 and "CUDA is not available" in only_line(err)
    assert snapshot(store) == before and JobStore(store.path).list_jobs() == []


# ----- CIFAR-10 batches ------------------------------------------------------------------------
class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _batch(path: Path, n: int = 20) -> None:
    data = np.random.default_rng(0).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    with path.open("wb") as fh:
        pickle.dump({b"data": data, b"labels": [i % 10 for i in range(n)]}, fh, protocol=2)


def _cifar(root: Path, broken: str, how) -> Path:
    root.mkdir()
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"):
        _batch(root / name)
    how(root / broken) if broken else how(root)
    return root


CIFAR = {
    "planted pickle": (lambda p: p.write_bytes(pickle.dumps(_Planted(p.parent / "pwned"))), "refus", 1),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:100]), "data_batch_1", 1),
    "not a pickle": (lambda p: p.write_bytes(b"hello world"), "data_batch_1", 1),
    "wrong shape": (
        lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((2, 5), np.uint8), b"labels": [0, 1]})),
        "shape",
        1,
    ),
    "a list": (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "not a CIFAR-10 batch", 1),
    "missing test batch": (lambda p: p.unlink(), "lacks test_batch", 2),
}


@pytest.mark.parametrize("case", CIFAR)
def test_bad_cifar_batches_are_one_line(tmp_path, store, capsys, case):
    how, fragment, exit_code = CIFAR[case]
    broken = "test_batch" if case == "missing test batch" else "data_batch_1"
    root = _cifar(tmp_path / "cifar", broken, how)
    before = snapshot(store)
    code, err = cli(capsys, "search", "cnn", *TINY_SEARCH, "--data", f"cifar10:{root}", "--store", store.path)
    line = error_line(err)
    assert code == exit_code and fragment in line, err
    assert not (root / "pwned").exists()
    if exit_code == 1:  # the run was recorded (the files exist) and failed with that line
        assert store.list_runs()[0].status == "failed" and store.list_runs()[0].error in line
    _unchanged(store, before)


# ----- PTB corpora: refused before the run or job is recorded -------------------------------
def _ptb(root: Path, **files: bytes) -> Path:
    root.mkdir()
    texts = {"train": b"the cat sat\nthe dog ran\n", "valid": b"the cat ran\n", "test": b"a dog sat\n"}
    for split, body in {**texts, **files}.items():
        if body is not None:
            (root / f"{split}.txt").write_bytes(body)
    return root


CORPORA = {
    "empty": ({"train": b""}, "is empty"),
    "whitespace only": ({"valid": b"  \n\t\n  "}, "is empty"),
    "binary": ({"train": b"\x00\x01\x02binary\x00"}, "looks binary"),
    "latin-1": ({"test": "caf\xe9 cr\xe8me\n".encode("latin-1")}, "is not UTF-8"),
    "missing valid.txt": ({"valid": None}, "lacks valid.txt"),
}


@pytest.mark.parametrize("case", [*CORPORA, "missing folder"])
@pytest.mark.parametrize("command", [["search", "rnn", *TINY_SEARCH], ["train", "preset:shrinkrnn"]])
def test_bad_corpus_is_one_line(tmp_path, store, capsys, case, command):
    if case == "missing folder":
        root, fragment = tmp_path / "nowhere", "corpus directory not found"
    else:
        files, fragment = CORPORA[case]
        root = _ptb(tmp_path / "ptb", **files)
    before = snapshot(store)
    code, err = cli(capsys, *command, "--data", f"ptb:{root}", "--store", store.path)
    assert code == 2 and fragment in only_line(err), err
    assert snapshot(store) == before and JobStore(store.path).list_jobs() == []


# ----- image folders ---------------------------------------------------------------------------
def test_bad_image_folders_are_one_line(tmp_path, store, capsys):
    one_class = tmp_path / "one"
    (one_class / "cats").mkdir(parents=True)
    junk = tmp_path / "junk"
    for name in ("cats", "dogs"):
        (junk / name).mkdir(parents=True)
        (junk / name / "a.png").write_bytes(b"not a png at all")
        (junk / name / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    before = snapshot(store)
    train = [
        "train",
        "preset:shrinkcnn-a",
        "--epochs",
        "1",
        "--no-onnx",
        "--threads",
        "1",
        "--image-size",
        "16",
        "--store",
        store.path,
    ]
    for root, fragment in ((tmp_path / "nope", "image folder not found"), (one_class, "at least two class")):
        code, err = cli(capsys, *train, "--data", f"folder:{root}")
        assert code == 2 and fragment in only_line(err), err
    assert JobStore(store.path).list_jobs() == []
    code, err = cli(capsys, *train, "--data", f"folder:{junk}")  # layout fine, no image decodes
    assert code == 1 and "no readable" in error_line(err), err
    assert JobStore(store.path).list_jobs()[0].status == "failed"
    _unchanged(store, before)


# ----- checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["garbage", "planted pickle", "not a dict"])
def test_bad_checkpoint_fails_the_resume_with_one_line(tmp_path, store, capsys, case):
    jobs = JobStore(store.path)
    job = create_job(
        jobs, load_preset("shrinkcnn-a"), train_config("cnn", "demo", epochs=1, max_batches=1, onnx=False, threads=1)
    )
    jobs.finish_job(job, RunStatus.STOPPED)
    path = jobs.job_dir(job) / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    body = {"garbage": b"\x00garbage" * 10, "planted pickle": pickle.dumps(_Planted(marker)), "not a dict": None}[case]
    if body is None:
        torch.save([1, 2, 3], path)
    else:
        path.write_bytes(body)
    before = snapshot(store)
    code, err = cli(capsys, "train", "--resume", job, "--store", store.path)
    assert code == 1 and ("checkpoint" in error_line(err)), err
    assert not marker.exists() and jobs.get_job(job).status == "failed"
    _unchanged(store, before)


# ----- store files -----------------------------------------------------------------------------
def test_bad_store_files_are_one_line_and_untouched(tmp_path, capsys):
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE notes (body TEXT)")
        con.execute("INSERT INTO notes VALUES ('mine')")
    con.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    newer = tmp_path / "newer.db"
    Store(newer)
    with sqlite3.connect(newer) as con:
        con.execute("PRAGMA user_version=999")
    con.close()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (foreign, "is not an AutoShrink run store"),
        (junk, "cannot open run store"),
        (newer, "newer AutoShrink Studio"),
        (blocker / "runs.db", "cannot create the folder"),
        (tmp_path, "cannot open run store"),
    ]
    for path, fragment in cases:
        before = path.read_bytes() if path.is_file() else None
        code, err = cli(capsys, "runs", "--store", path)
        assert code == 2 and fragment in only_line(err), (path, err)
        assert (path.read_bytes() if path.is_file() else None) == before  # not a byte changed


# ----- export --out ----------------------------------------------------------------------------
def test_export_out_never_overwrites_the_store_or_a_file(tmp_path, store, capsys):
    run = store.list_runs()[0].id
    before, store_bytes = snapshot(store), store.path.read_bytes()
    existing = tmp_path / "keep.json"
    existing.write_text("mine")
    cases = [
        (store.path, "is the run store itself"),
        (Path(f"{store.path}-wal"), "is the run store itself"),
        (tmp_path, "is a directory"),
        (tmp_path / "no" / "cell.json", "does not exist"),
        (existing, "already exists; add --force"),
    ]
    for out, fragment in cases:
        code, err = cli(capsys, "export", run, "--out", out, "--store", store.path)
        assert code == 2 and fragment in only_line(err), (out, err)
    assert existing.read_text() == "mine" and store.path.read_bytes() == store_bytes
    code, err = cli(capsys, "export", 9999, "--store", store.path)
    assert code == 2 and "unknown run 9999" in only_line(err)
    code, _ = cli(capsys, "export", run, "--out", existing, "--force", "--store", store.path)
    assert code == 0 and '"kind": "cnn"' in existing.read_text()
    _unchanged(store, before)


# ----- run bundles -----------------------------------------------------------------------------
def test_bad_run_bundles_are_one_line(tmp_path, store, capsys):
    """`import-run` of a truncated, foreign, wrong-version, tampered or oversized bundle: one line,
    exit 2, and the store keeps exactly what it had (tests/test_bundle.py holds the full list)."""
    import gzip
    import json

    from core.search.bundle import MAX_FILE_BYTES, bundle_bytes

    run = store.list_runs()[0].id
    good = json.loads(gzip.decompress(bundle_bytes(store, run)))
    tampered = json.loads(json.dumps(good))
    tampered["steps"][1]["score"] = 9.0  # a choice the candidates do not support
    cases = {
        "truncated.json.gz": (bundle_bytes(store, run)[:100], "truncated"),
        "foreign.json": (b'{"format": "something-else"}', ""),
        "newer.json": (json.dumps({**good, "version": 99}).encode(), "version"),
        "tampered.json": (json.dumps(tampered).encode(), ""),
        "huge.json": (b" " * (MAX_FILE_BYTES + 1), "limit"),
        "nested.json": (b"[" * 100_000, ""),
    }
    before = snapshot(store)
    for name, (data, fragment) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        code, err = cli(capsys, "import-run", path, "--store", store.path)
        line = only_line(err)
        assert code == 2 and line.startswith(f"error: {name}: ") and fragment in line, (name, err)
        assert snapshot(store) == before, name
