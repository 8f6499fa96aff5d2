"""Image-folder datasets (`folder:PATH`): one sub-folder per class of JPEG/PNG files.

Two layouts, the ones users already have:
- PATH/train/<class>/* and PATH/val/<class>/* (the ImageNet layout): used as given;
- PATH/<class>/*: split per class with a seeded RNG, `val_fraction` held out, so every
  class appears on both sides and the split is the same on every run.

Images are read with Pillow, converted to RGB, resized so the shorter side is `size`
and centre-cropped to size x size: what the network's fixed input needs. A file Pillow
cannot read (truncated, not an image, a decompression bomb) is skipped and counted in a
note rather than ending a long load. Everything is held in memory as float32, which is
the right trade for the small folders a laptop trains on; the note says how much.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from core.data.images import DataError, ImageData, image_data

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
Log = Callable[[str], None] | None


def class_dirs(root: Path) -> list[Path]:
    """Sorted sub-folders of `root` (hidden ones skipped): the class names, in label order."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_files(folder: Path) -> list[Path]:
    """JPEG/PNG files directly in `folder`, sorted so labels and splits are reproducible."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def folder_layout(root: Path) -> tuple[list[str], bool]:
    """Class names and whether the folder has train/ and val/ parts; cheap (no image is read)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    split = (root / "train").is_dir() and (root / "val").is_dir()
    classes = [p.name for p in class_dirs(root / "train" if split else root)]
    if len(classes) < 2:
        raise DataError(f"{root}: needs at least two class sub-folders of JPEG/PNG images, found {len(classes)}")
    return classes, split


def load_image_folder(root: Path, size: int, val_fraction: float = 0.2, seed: int = 0, log: Log = None) -> ImageData:
    """The folder as an ImageData of size x size RGB images, normalised by its training images."""
    root = Path(root).expanduser()
    classes, split = folder_layout(root)
    notes: list[str] = []
    if split:
        extra = sorted({p.name for p in class_dirs(root / "val")} - set(classes))
        if extra:
            raise DataError(f"{root}/val has classes missing from train/: {', '.join(extra[:5])}")
        train = [(f, c) for c, name in enumerate(classes) for f in image_files(root / "train" / name)]
        val = [
            (f, c)
            for c, name in enumerate(classes)
            if (root / "val" / name).is_dir()
            for f in image_files(root / "val" / name)
        ]
    else:
        train, val = _split(root, classes, val_fraction, seed)
    x_tr, y_tr, bad_tr = _read(train, size)
    x_va, y_va, bad_va = _read(val, size)
    if bad_tr + bad_va:
        _note(notes, log, f"{root}: skipped {bad_tr + bad_va} file(s) Pillow could not read")
    mib = (len(y_tr) + len(y_va)) * 3 * size * size * 4 / 2**20
    _note(
        notes,
        log,
        f"{root}: {len(classes)} classes, {len(y_tr)} train / {len(y_va)} val images "
        f"at {size}x{size} ({mib:,.0f} MiB in memory)",
    )
    if len(y_tr) == 0:
        raise DataError(f"{root}: no readable JPEG/PNG training images")
    return image_data(f"folder({root})", x_tr, y_tr, x_va, y_va, len(classes), notes)


def _split(
    root: Path, classes: list[str], val_fraction: float, seed: int
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Seeded per-class hold-out: at least one image of each class on each side when it has two."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c, name in enumerate(classes):
        files = image_files(root / name)
        if not files:
            raise DataError(f"{root / name}: class folder holds no JPEG/PNG files")
        order = rng.permutation(len(files))
        n_val = min(len(files) - 1, max(1, int(round(val_fraction * len(files))))) if len(files) > 1 else 0
        val += [(files[i], c) for i in order[:n_val]]
        train += [(files[i], c) for i in order[n_val:]]
    return train, val


def _read(items: list[tuple[Path, int]], size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode, resize and centre-crop every image: (N, 3, size, size) uint8, labels, bad-file count."""
    images = np.empty((len(items), 3, size, size), dtype=np.uint8)
    labels = np.empty(len(items), dtype=np.int64)
    n, bad = 0, 0
    for path, label in items:
        arr = _load_rgb(path, size)
        if arr is None:
            bad += 1
            continue
        images[n], labels[n] = arr.transpose(2, 0, 1), label
        n += 1
    return images[:n], labels[:n], bad


def _load_rgb(path: Path, size: int) -> np.ndarray | None:
    """One image as (size, size, 3) uint8, or None when Pillow cannot read it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("RGB")
                w, h = im.size
                scale = size / min(w, h)
                im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
                w, h = im.size
                left, top = (w - size) // 2, (h - size) // 2
                return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None


def _note(notes: list[str], log: Log, line: str) -> None:
    notes.append(line)
    if log is not None:
        log(line)
