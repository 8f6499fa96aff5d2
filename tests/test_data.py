"""Image datasets: digits, CIFAR-10 batches (synthetic, real, downloaded), and safe unpickling."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data import images as data_mod
from core.data.images import CIFAR_DIRNAME, DataError, ImageData, load_full, load_proxy, read_cifar_batch
from core.data.spec import spec_forms

SHARED_CIFAR = Path(__file__).parents[1] / ".." / "shared" / "data" / "cifar10" / CIFAR_DIRNAME
TRAIN_SIZES = (37, 41, 29, 53, 31)  # odd sizes on purpose: the format does not promise 10,000
TEST_SIZE = 47


# ----- helpers -------------------------------------------------------------------------------
def write_batch(path: Path, n: int, rng: np.random.Generator, str_keys: bool = False) -> None:
    """A CIFAR-10 python batch as the official files hold it: uint8 (n, 3072) rows + label list."""
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(i % 10) for i in range(n)]  # every class present in every batch
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    with path.open("wb") as fh:
        pickle.dump({key("data"): data, key("labels"): labels, key("batch_label"): b"synthetic"}, fh, protocol=2)


def make_cifar_dir(root: Path, train_sizes=TRAIN_SIZES, test_size: int = TEST_SIZE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(123)
    for i, n in enumerate(train_sizes, start=1):
        write_batch(root / f"data_batch_{i}", n, rng)
    write_batch(root / "test_batch", test_size, rng)
    with (root / "batches.meta").open("wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh, protocol=2)
    return root


def per_class(labels: torch.Tensor) -> list[int]:
    return torch.bincount(labels, minlength=10).tolist()


# ----- spec parsing --------------------------------------------------------------------------
def test_dataset_names_lists_the_forms() -> None:
    assert spec_forms("cnn", search=True) == ["digits", "cifar10", "cifar10:PATH"]


@pytest.mark.parametrize("spec", ["mnist", "", "cifar10:", "cifar100:/x", "Digits"])
def test_unknown_spec_lists_valid_forms(spec: str) -> None:
    with pytest.raises(DataError) as err:
        load_proxy(spec)
    msg = str(err.value)
    assert "digits" in msg and "cifar10:PATH" in msg and "\n" not in msg


def test_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere"):
        load_proxy(f"cifar10:{missing}")


# ----- digits --------------------------------------------------------------------------------
def test_digits_proxy_shapes_and_split() -> None:
    d = load_proxy("digits", seed=0)
    assert (d.num_classes, d.in_channels, d.input_size) == (10, 1, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_val.shape[1:] == (1, 8, 8)
    # 80% cap per class (about 144 of ~180) for train, the rest (<= 100) for validation
    assert len(d.y_train) + len(d.y_val) == 1797
    assert all(139 <= n <= 146 for n in per_class(d.y_train))
    assert all(35 <= n <= 37 for n in per_class(d.y_val))
    assert d.notes and "wanted 500" in d.notes[0]
    # normalised with the training images' statistics
    assert abs(d.x_train.mean().item()) < 1e-4 and abs(d.x_train.std().item() - 1) < 1e-2


def test_digits_read_without_sklearn_equals_load_digits(monkeypatch) -> None:
    """The CSV read (no sklearn import, for a fast demo start) gives load_digits' arrays, and
    the fallback to load_digits (a scikit-learn keeping the file elsewhere) gives them too."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, target = data_mod._digits_arrays()
    assert np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)
    monkeypatch.setattr(data_mod.importlib.util, "find_spec", lambda name: None)
    images, target = data_mod._digits_arrays()
    assert np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)


def test_digits_requested_counts_and_seed() -> None:
    a = load_proxy("digits", seed=1, per_class_train=20, per_class_val=10)
    b = load_proxy("digits", seed=1, per_class_train=20, per_class_val=10)
    c = load_proxy("digits", seed=2, per_class_train=20, per_class_val=10)
    assert per_class(a.y_train) == [20] * 10 and per_class(a.y_val) == [10] * 10
    assert a.notes == []
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)


def test_digits_full_is_fixed_and_disjoint() -> None:
    full, again = load_full("digits"), load_full("digits")
    assert len(full.y_train) + len(full.y_val) == 1797
    assert torch.equal(full.x_val, again.x_val)
    train_rows = {tuple(r) for r in full.x_train.flatten(1).tolist()}
    overlap = sum(tuple(r) in train_rows for r in full.x_val.flatten(1).tolist())
    assert overlap <= 2  # digits has a couple of pixel-identical images; no systematic leak


def test_image_data_to_keeps_tensors_on_same_device() -> None:
    d = load_proxy("digits", per_class_train=5, per_class_val=5)
    moved = d.to("cpu")
    assert isinstance(moved, ImageData) and moved.x_train is d.x_train


# ----- CIFAR-10 from a directory -------------------------------------------------------------
def test_read_cifar_batch_layout(tmp_path: Path) -> None:
    write_batch(tmp_path / "b", 7, np.random.default_rng(0))
    x, y = read_cifar_batch(tmp_path / "b")
    with (tmp_path / "b").open("rb") as fh:
        raw = pickle.load(fh)  # test-written file: plain pickle is fine for checking the layout
    assert x.shape == (7, 3, 32, 32) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == list(range(7))
    # channel-major rows: the first 1024 bytes are the red plane, row by row
    assert np.array_equal(x[0, 0], raw[b"data"][0, :1024].reshape(32, 32))
    assert np.array_equal(x[3, 2], raw[b"data"][3, 2048:].reshape(32, 32))


def test_read_cifar_batch_accepts_str_keys(tmp_path: Path) -> None:
    write_batch(tmp_path / "b", 5, np.random.default_rng(0), str_keys=True)
    x, y = read_cifar_batch(tmp_path / "b")
    assert len(x) == len(y) == 5


def test_cifar_proxy_on_odd_sized_batches(tmp_path: Path) -> None:
    root = make_cifar_dir(tmp_path / CIFAR_DIRNAME)
    logged: list[str] = []
    d = load_proxy(f"cifar10:{root}", seed=3, per_class_train=10, per_class_val=4, log=logged.append)
    assert (d.num_classes, d.in_channels, d.input_size) == (10, 3, 32)
    assert d.x_train.shape == (100, 3, 32, 32) and d.x_val.shape == (40, 3, 32, 32)
    assert per_class(d.y_train) == [10] * 10 and per_class(d.y_val) == [4] * 10
    assert d.notes == [] and logged == []
    means = d.x_train.mean(dim=(0, 2, 3))
    stds = d.x_train.std(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-4)
    assert torch.allclose(stds, torch.ones(3), atol=1e-3)


def test_cifar_proxy_takes_what_exists_and_notes_it(tmp_path: Path) -> None:
    root = make_cifar_dir(tmp_path / "c")
    logged: list[str] = []
    d = load_proxy(f"cifar10:{root}", per_class_train=500, per_class_val=100, log=logged.append)
    assert len(d.y_train) == sum(TRAIN_SIZES) and len(d.y_val) == TEST_SIZE
    assert len(d.notes) == 20 and logged == d.notes
    assert any("train images, wanted 500" in n for n in d.notes)
    assert any("val images, wanted 100" in n for n in d.notes)


def test_cifar_proxy_seeded(tmp_path: Path) -> None:
    root = make_cifar_dir(tmp_path / "c")
    a = load_proxy(f"cifar10:{root}", seed=5, per_class_train=3, per_class_val=2)
    b = load_proxy(f"cifar10:{root}", seed=5, per_class_train=3, per_class_val=2)
    c = load_proxy(f"cifar10:{root}", seed=6, per_class_train=3, per_class_val=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_train, c.x_train)


def test_cifar_full_and_parent_directory(tmp_path: Path) -> None:
    make_cifar_dir(tmp_path / CIFAR_DIRNAME)
    d = load_full(f"cifar10:{tmp_path}")  # the folder holding cifar-10-batches-py works too
    assert len(d.y_train) == sum(TRAIN_SIZES) and len(d.y_val) == TEST_SIZE


def test_cifar_missing_file(tmp_path: Path) -> None:
    root = make_cifar_dir(tmp_path / "c")
    (root / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4"):
        load_proxy(f"cifar10:{root}")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pickle at all",
        pickle.dumps([1, 2, 3]),
        pickle.dumps({b"data": np.zeros((3, 3072), np.uint8)})[:-20],
    ],
)
def test_cifar_corrupt_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "b").write_bytes(content)
    with pytest.raises(DataError):
        read_cifar_batch(tmp_path / "b")


@pytest.mark.parametrize(
    "batch, match",
    [
        ({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4}, "shape"),
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}, "uint8"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "3 labels for 4 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "outside"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]}, "integers"),
        ({b"labels": [0]}, "needs 'data' and 'labels'"),
    ],
)
def test_cifar_wrong_contents(tmp_path: Path, batch: dict, match: str) -> None:
    with (tmp_path / "b").open("wb") as fh:
        pickle.dump(batch, fh)
    with pytest.raises(DataError, match=match):
        read_cifar_batch(tmp_path / "b")


# ----- restricted unpickling -----------------------------------------------------------------
class _Evil:
    """Unpickling this would call os.system: the classic pickle attack."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _EvalEvil:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    with path.open("wb") as fh:
        pickle.dump({b"data": _Evil(marker), b"labels": [0]}, fh, protocol=2)
    with pytest.raises(DataError, match="refused"):
        read_cifar_batch(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [_EvalEvil(), {b"data": io.BytesIO}, [tarfile.open]])
def test_other_globals_are_refused(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError, match="refused"):
        read_cifar_batch(path)


def test_codecs_encode_only_latin1(tmp_path: Path) -> None:
    """Protocol 2 rebuilds bytes via _codecs.encode(s, 'latin1'); other codecs are refused."""
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x06\x00\x00\x00rot_13\x86Rq\x01.")
    with pytest.raises(DataError, match="refused"):
        read_cifar_batch(path)


# ----- download (network mocked) -------------------------------------------------------------
def _fake_tarball(tmp_path: Path) -> bytes:
    src = make_cifar_dir(tmp_path / "src" / CIFAR_DIRNAME)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname=CIFAR_DIRNAME)
    return buf.getvalue()


def test_offline_fails_fast_naming_path_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts: list[float] = []

    def offline(url, timeout=None):
        timeouts.append(timeout)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(data_mod.urllib.request, "urlopen", offline)
    t0 = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_proxy("cifar10", cache_dir=tmp_path)
    assert time.perf_counter() - t0 < 2
    assert "cifar10:PATH" in str(err.value) and "\n" not in str(err.value)
    assert timeouts and timeouts[0] is not None and timeouts[0] <= 10
    assert not list(tmp_path.glob("cifar-10-python.tar.gz*"))  # no half-written download left


def test_download_verifies_extracts_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _fake_tarball(tmp_path)
    calls: list[str] = []

    def serve(url, timeout=None):
        calls.append(url)
        return io.BytesIO(blob)

    monkeypatch.setattr(data_mod.urllib.request, "urlopen", serve)
    monkeypatch.setattr(data_mod, "CIFAR_MD5", hashlib.md5(blob).hexdigest())
    cache = tmp_path / "cache"
    d = load_proxy("cifar10", per_class_train=2, per_class_val=1, cache_dir=cache)
    assert len(d.y_train) == 20 and len(d.y_val) == 10
    assert (cache / CIFAR_DIRNAME / "test_batch").is_file()
    load_full("cifar10", cache_dir=cache)
    assert len(calls) == 1  # second load reuses the extracted cache


def test_download_md5_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _fake_tarball(tmp_path)
    monkeypatch.setattr(data_mod.urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(blob))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="MD5"):
        load_proxy("cifar10", cache_dir=cache)
    assert not (cache / "cifar-10-python.tar.gz").exists()


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSHRINK_CACHE", str(tmp_path / "envcache"))
    assert data_mod.default_cache_dir() == tmp_path / "envcache"


# ----- the shared real copy ------------------------------------------------------------------
@pytest.mark.skipif(
    not SHARED_CIFAR.is_dir(), reason=f"shared CIFAR-10 copy not found at {SHARED_CIFAR} (real-data tier)"
)
def test_shared_cifar_proxy_split() -> None:
    logged: list[str] = []
    d = load_proxy(f"cifar10:{SHARED_CIFAR}", seed=0, log=logged.append)
    train, val = per_class(d.y_train), per_class(d.y_val)
    # the copy has 4,660 train images (fewer than 500 for every class) and 846 test images
    assert sum(train) == 4660 and max(train) < 500 and min(train) > 0
    assert sum(val) == 846 and max(val) <= 100 and min(val) > 0
    assert d.x_train.shape[1:] == (3, 32, 32) and d.x_val.shape[1:] == (3, 32, 32)
    assert any("train images, wanted 500" in n for n in d.notes)
    assert logged == d.notes
    small = load_proxy(f"cifar10:{SHARED_CIFAR}", seed=0, per_class_train=50, per_class_val=20)
    assert per_class(small.y_train) == [50] * 10 and per_class(small.y_val) == [20] * 10
