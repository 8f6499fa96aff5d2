"""Image datasets for CNN search and final training (specs parsed by core.data.spec).

Three sources are read here (image folders: core.data.imagefolder):
- ``digits``: scikit-learn's 8x8 handwritten digits, shipped with scikit-learn, so the app and
  the tests always have a real (if tiny) image task offline.
- ``cifar10:PATH``: a local CIFAR-10 "python version" directory (``data_batch_1..5``,
  ``test_batch``), e.g. the shared partial copy or one torchvision unpacked.
- ``cifar10``: the same, downloaded once from the official site into a cache directory.

CIFAR-10 batches are pickles, and unpickling runs code chosen by whoever wrote the file. They
are therefore read with `SafeBatchUnpickler`, which admits only the handful of callables a
numpy array of a plain dtype needs and refuses everything else before it can run.

Every loader returns an `ImageData` of float32 NCHW tensors normalised with the per-channel
mean/std of *its own training images* (so validation data never leaks into normalisation),
plus human-readable notes about anything that did not go as asked (e.g. too few images).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import importlib.util
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from core.data.spec import DataError, DataSpec, Source, parse_data_spec

Log = Callable[[str], None]

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_DIRNAME = "cifar-10-batches-py"
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_CLASSES, CIFAR_SIZE, CIFAR_CHANNELS = 10, 32, 3
CONNECT_TIMEOUT_S = 5.0  # offline must fail at once, not after a minute of retries
DIGITS_TRAIN_FRACTION = 0.8  # digits has ~180 images per class: keep 80% for training
FULL_DIGITS_SEED = 0  # the "full" digits split is fixed so final runs are comparable


@dataclass
class ImageData:
    """One image classification task, ready for training: tensors plus what a network needs to know."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    num_classes: int
    in_channels: int
    input_size: int
    notes: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "ImageData":
        """A copy on `device`; tensors already there are shared, not copied (Tensor.to is a no-op)."""
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
            notes=list(self.notes),
        )


# ----- public loaders ------------------------------------------------------------------------
def load_proxy(
    spec: DataSpec | str,
    seed: int = 0,
    per_class_train: int = 500,
    per_class_val: int = 100,
    cache_dir: Path | None = None,
    log: Log | None = None,
) -> ImageData:
    """The small, class-balanced task the search trains every candidate on.

    CIFAR-10 (the paper's proxy): `per_class_train` images per class drawn from the training
    batches and `per_class_val` per class from the test batch, with a seeded RNG; a class with
    fewer images gives all it has and a note says so.
    digits: a seeded stratified split; per class min(per_class_train, floor(80% of the class))
    for training and min(per_class_val, the rest) for validation, so train and validation never
    overlap however large the requested counts are (defaults give about 144 / 36 per class).
    """
    spec = parse_data_spec(spec, "cnn", search=True)
    if spec.source is Source.DIGITS:
        return _digits_split(seed, per_class_train, per_class_val, log)
    root = _cifar_root(spec.path, cache_dir, log)
    (x_tr, y_tr), (x_te, y_te) = _read_cifar_dir(root)
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    train_idx = _pick_per_class(y_tr, per_class_train, rng, "train", notes, log)
    val_idx = _pick_per_class(y_te, per_class_val, rng, "val", notes, log)
    return image_data(
        f"cifar10-proxy({root})", x_tr[train_idx], y_tr[train_idx], x_te[val_idx], y_te[val_idx], CIFAR_CLASSES, notes
    )


def load_full(spec: DataSpec | str, cache_dir: Path | None = None, log: Log | None = None) -> ImageData:
    """The whole task for final training: CIFAR-10 train batches vs test batch; digits 80/20.

    digits has no official test set, so its "full" split is the stratified 80/20 split with a
    fixed seed: every final run of a digits model is measured on the same held-out images.
    """
    spec = parse_data_spec(spec, "cnn", search=True)  # image folders: core.data.imagefolder
    if spec.source is Source.DIGITS:
        return replace(_digits_split(FULL_DIGITS_SEED, None, None, log=None), name="digits-full")
    root = _cifar_root(spec.path, cache_dir, log)
    (x_tr, y_tr), (x_te, y_te) = _read_cifar_dir(root)
    return image_data(f"cifar10-full({root})", x_tr, y_tr, x_te, y_te, CIFAR_CLASSES, [])


def check_cifar_dir(path: Path) -> None:
    """One line if `path` is no CIFAR-10 python-version directory (missing, or lacking a batch
    file); the batches' content is checked when they are read."""
    root = _cifar_root(path, None, None)
    missing = [n for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE) if not (root / n).is_file()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(missing)} (the CIFAR-10 python version expected)")


# ----- digits --------------------------------------------------------------------------------
def _digits_split(seed: int, per_class_train: int | None, per_class_val: int | None, log: Log | None) -> ImageData:
    """Seeded stratified split of scikit-learn's digits (see load_proxy for the counts).

    None for a count means "as many as the 80% rule allows" (the full split).
    """
    images, target = _digits_arrays()
    x = images.astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8), values 0..16
    y = target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        cap = int(len(idx) * DIGITS_TRAIN_FRACTION)
        n_train = cap if per_class_train is None else min(per_class_train, cap)
        rest = len(idx) - n_train
        n_val = rest if per_class_val is None else min(per_class_val, rest)
        train_idx.append(idx[:n_train])
        val_idx.append(idx[n_train : n_train + n_val])
    notes: list[str] = []
    got = [len(t) for t in train_idx]
    if per_class_train is not None and min(got) < per_class_train:
        _note(
            notes,
            log,
            f"digits: {min(got)}-{max(got)} train images per class (80% of each class), wanted {per_class_train}",
        )
    tr, va = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))
    return image_data("digits", x[tr], y[tr], x[va], y[va], 10, notes)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (images (N, 8, 8), targets (N,)), read straight from the CSV that
    scikit-learn ships (its load_digits reads the same file the same way). Why not load_digits:
    importing sklearn.datasets pulls in scipy and costs over a second of CPU, most of a demo
    search's data loading; finding the package's folder imports nothing. Falls back to
    load_digits where the file is not where this scikit-learn keeps it."""
    spec = importlib.util.find_spec("sklearn")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(roots[0]) / "datasets" / "data" / "digits.csv.gz" if roots else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits  # local: only digits users pay the import

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


# ----- shared helpers ------------------------------------------------------------------------
def _note(notes: list[str], log: Log | None, line: str) -> None:
    """Record a note and echo it to the caller's log, so the UI and the CLI both see it."""
    notes.append(line)
    if log is not None:
        log(line)


def _pick_per_class(
    labels: np.ndarray, per_class: int, rng: np.random.Generator, split: str, notes: list[str], log: Log | None
) -> np.ndarray:
    """Seeded choice of up to `per_class` indices of each class; shortfalls become notes."""
    chosen = []
    for c in range(CIFAR_CLASSES):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            _note(notes, log, f"class {c}: only {len(idx)} {split} images, wanted {per_class}")
        chosen.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen))


def image_data(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    notes: list[str],
) -> ImageData:
    """Tensors normalised by the training images' per-channel mean/std."""
    if len(y_train) == 0 or len(y_val) == 0:
        raise DataError(f"{name}: the split left {len(y_train)} train / {len(y_val)} val images")
    xt = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
    xv = torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32))
    mean = xt.mean(dim=(0, 2, 3), keepdim=True)
    std = xt.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return ImageData(
        name=name,
        x_train=(xt - mean) / std,
        y_train=torch.from_numpy(y_train.astype(np.int64)),
        x_val=(xv - mean) / std,
        y_val=torch.from_numpy(y_val.astype(np.int64)),
        num_classes=num_classes,
        in_channels=xt.shape[1],
        input_size=xt.shape[-1],
        notes=notes,
    )


# ----- CIFAR-10 batches: restricted unpickling -----------------------------------------------
def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Protocol-2 pickles rebuild bytes as _codecs.encode(str, 'latin1'); allow only that codec."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(text, str):
        raise DataError(f"refused pickle content: _codecs.encode with {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _numpy_reconstruct() -> Callable[..., Any]:
    """numpy's array-rebuild function; it moved from numpy.core to numpy._core in numpy 2."""
    core = getattr(np, "_core", None) or np.core  # type: ignore[attr-defined]
    return core.multiarray._reconstruct


def _numpy_scalar() -> Callable[..., Any]:
    core = getattr(np, "_core", None) or np.core  # type: ignore[attr-defined]
    return core.multiarray.scalar


# What a pickled numpy array of a plain dtype needs, under both numpy 1.x and 2.x module names.
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


class SafeBatchUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild dicts/lists/bytes/ints and numpy arrays, and nothing else.

    Any other global (os.system, builtins.eval, ...) is refused in find_class, i.e. before the
    pickle can call it, so a planted file cannot run code.
    """

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise DataError(f"refused pickle content: {module}.{name} is not allowed in a CIFAR batch")
        return factory()


def _unpickle(path: Path) -> Any:
    """Read one pickle through the restricted unpickler; every failure is a one-line DataError."""
    if not path.is_file():
        raise DataError(f"missing CIFAR-10 file: {path}")
    try:
        with path.open("rb") as fh:
            return SafeBatchUnpickler(fh, encoding="bytes").load()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        UnicodeDecodeError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise DataError(f"corrupt CIFAR-10 file {path}: {type(exc).__name__}: {exc}") from None


def _field(batch: dict, key: str) -> Any:
    """A batch dict field under its bytes key (Python 2 pickles) or str key (Python 3 ones)."""
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    return None


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> images (N, 3, 32, 32) uint8 and labels (N,) int64.

    N is whatever the file holds: partial copies and subsets are valid, only the row layout
    (3072 bytes: R plane, G plane, B plane, each 32x32 row-major) and labels 0..9 are checked.
    """
    path = Path(path)
    batch = _unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict, got {type(batch).__name__})")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if data is None or labels is None:
        raise DataError(f"{path}: not a CIFAR-10 batch (needs 'data' and 'labels')")
    images = _check_images(path, data)
    return images, _check_labels(path, labels, len(images))


def _check_images(path: Path, data: Any) -> np.ndarray:
    """Accept (N, 3072) or (N, 3, 32, 32) uint8 (as in the official files); anything else is refused."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array, got {kind}")
    pixels = CIFAR_CHANNELS * CIFAR_SIZE * CIFAR_SIZE
    if data.ndim == 2 and data.shape[1] == pixels:
        return data.reshape(-1, CIFAR_CHANNELS, CIFAR_SIZE, CIFAR_SIZE)
    if data.ndim == 4 and data.shape[1:] == (CIFAR_CHANNELS, CIFAR_SIZE, CIFAR_SIZE):
        return data
    raise DataError(f"{path}: 'data' has shape {data.shape}, expected (N, {pixels})")


def _check_labels(path: Path, labels: Any, n: int) -> np.ndarray:
    """Labels must be n integers in 0..9."""
    try:
        arr = np.asarray(labels)
    except (ValueError, TypeError):
        raise DataError(f"{path}: 'labels' is not a list of integers") from None
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{path}: 'labels' is not a list of integers")
    if len(arr) != n:
        raise DataError(f"{path}: {len(arr)} labels for {n} images")
    if arr.size and (arr.min() < 0 or arr.max() >= CIFAR_CLASSES):
        raise DataError(f"{path}: labels outside 0..{CIFAR_CLASSES - 1}")
    return arr.astype(np.int64)


def _read_cifar_dir(root: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """All training batches concatenated, and the test batch."""
    parts = [read_cifar_batch(root / name) for name in CIFAR_TRAIN_FILES]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return (x_tr, y_tr), read_cifar_batch(root / CIFAR_TEST_FILE)


def _cifar_root(path: Path | None, cache_dir: Path | None, log: Log | None) -> Path:
    """The batches directory: the user's path (or its cifar-10-batches-py child) or the download."""
    if path is None:
        return ensure_cifar_download(cache_dir, log)
    if not path.is_dir():
        raise DataError(f"CIFAR-10 directory not found: {path}")
    if not (path / CIFAR_TRAIN_FILES[0]).exists() and (path / CIFAR_DIRNAME).is_dir():
        return path / CIFAR_DIRNAME  # the user named the folder that holds the unpacked tarball
    return path


# ----- CIFAR-10 download ---------------------------------------------------------------------
def default_cache_dir() -> Path:
    """$AUTOSHRINK_CACHE, else ~/.cache/autoshrink: one place to keep downloads between runs."""
    env = os.environ.get("AUTOSHRINK_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autoshrink"


def ensure_cifar_download(cache_dir: Path | None = None, log: Log | None = None) -> Path:
    """Download, verify and unpack the official tarball once; later calls reuse the cache."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = cache / CIFAR_DIRNAME
    if all((root / n).is_file() for n in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)):
        return root
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / "cifar-10-python.tar.gz"
    if not (tarball.is_file() and _md5(tarball) == CIFAR_MD5):
        _download(CIFAR_URL, tarball, log)
    if log is not None:
        log(f"extracting {tarball}")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(cache, filter="data")  # "data" refuses absolute paths, .., links out
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"cannot extract {tarball}: {exc}") from None
    if not root.is_dir():
        raise DataError(f"{tarball} did not contain {CIFAR_DIRNAME}/")
    return root


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path, log: Log | None) -> None:
    """Stream `url` to `dest` via a .part file, checking the MD5 before the file is kept.

    The short timeout makes an offline machine fail in seconds with a message that points to
    the offline alternative, instead of hanging in the middle of a search set-up.
    """
    part = dest.with_name(dest.name + ".part")
    offline_hint = "download CIFAR-10 elsewhere and use --data cifar10:PATH (a cifar-10-batches-py directory)"
    if log is not None:
        log(f"downloading {url}")
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S) as resp, part.open("wb") as out:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download CIFAR-10 ({reason}); {offline_hint}") from None
    if digest.hexdigest() != CIFAR_MD5:
        part.unlink(missing_ok=True)
        raise DataError(f"CIFAR-10 download failed its MD5 check; retry or {offline_hint}")
    shutil.move(str(part), dest)


__all__ = [
    "DataError",
    "ImageData",
    "load_proxy",
    "load_full",
    "check_cifar_dir",
    "read_cifar_batch",
    "SafeBatchUnpickler",
    "default_cache_dir",
    "ensure_cifar_download",
]
