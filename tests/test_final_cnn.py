"""ShrinkCNN final training: it learns (digits, CIFAR-10, an image folder), the schedule and
augmentation do what they say, stop + resume is exact, and configurations are checked early."""

import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CIFAR_DIR, needs
from PIL import Image

from core.cell.presets import load_preset
from core.data.augment import augment_batch, resolve_mode
from core.data.imagefolder import load_image_folder
from core.data.images import DataError
from core.errors import ConfigError
from core.nets.cnn import imagenet_config
from core.store.jobs import JobStore
from core.store.runs import RunStatus
from core.training.cnn import data_shape, lr_at, network_config, planned_network
from core.training.config import train_config
from core.training.context import JobObserver
from core.training.engine import create_job, run_job

CELL = load_preset("shrinkcnn-a")


def _run(
    store: JobStore,
    observer: JobObserver | None = None,
    stop: threading.Event | None = None,
    job: int | None = None,
    **settings,
) -> int:
    if job is None:
        job = create_job(store, CELL, train_config("cnn", "demo", threads=1, onnx=False, **settings), "test")
    run_job(store, job, observer, stop)
    return job


def test_digits_training_ends_far_above_chance(store_path):
    store = JobStore(store_path)
    job = _run(store, epochs=4)
    rec = store.get_job(job)
    rows = store.epochs(job)
    assert rec.status == RunStatus.FINISHED and [r.epoch for r in rows] == [1, 2, 3, 4]
    assert rec.metrics["accuracy"] > 0.9  # chance is 0.1
    assert rows[-1].train_loss < rows[0].train_loss
    assert all(r.throughput > 0 and r.lr > 0 for r in rows)
    assert rec.metrics["params"] > 0 and rec.metrics["macs"] > 0
    exported = Path(rec.metrics["exports"]["weights"])
    assert exported.exists() and exported.parent == store.job_dir(job)


def test_stop_then_resume_equals_an_uninterrupted_run(store_path):
    store = JobStore(store_path)
    settings = dict(epochs=3, max_batches=8)
    stop = threading.Event()

    class StopAfterFirstEpoch(JobObserver):
        def on_epoch(self, job_id, row):
            stop.set()

    job = _run(store, StopAfterFirstEpoch(), stop, **settings)
    assert store.get_job(job).status == RunStatus.STOPPED and len(store.epochs(job)) == 1
    _run(store, job=job)  # resume, as the app's Resume does
    fresh = _run(store, **settings)
    cols = ("train_loss", "val_loss", "val_acc", "lr")
    assert [[getattr(r, c) for c in cols] for r in store.epochs(job)] == [
        [getattr(r, c) for c in cols] for r in store.epochs(fresh)
    ]
    assert store.get_job(job).status == RunStatus.FINISHED


@needs(CIFAR_DIR, "the CIFAR-10 partial copy")
def test_one_epoch_on_cifar10(store_path):
    store = JobStore(store_path)
    job = _run(
        store,
        data=f"cifar10:{CIFAR_DIR}",
        width_multiplier=0.25,
        cells_per_stage=(1, 1, 1),
        epochs=1,
        warmup_epochs=0.0,
        batch_size=128,
    )
    rec = store.get_job(job)
    assert rec.status == RunStatus.FINISHED, rec.error
    assert rec.metrics["input_size"] == 32 and "cifar10-full" in rec.metrics["data"]
    assert rec.metrics["accuracy"] > 0.18  # chance is 0.10 on 846 test images


def test_warmup_then_cosine_schedule():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # decays monotonically after warm-up
    assert lrs[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lr_at(99, 100, 0, 1.0) < 1e-3 and lr_at(0, 100, 0, 1.0) == pytest.approx(1.0)


def test_augmentation_is_a_seeded_crop_and_flip_on_the_batch():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    a = augment_batch(x, "crop-flip", torch.Generator().manual_seed(1))
    b = augment_batch(x, "crop-flip", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, augment_batch(x, "crop-flip", torch.Generator().manual_seed(2)))
    crop = augment_batch(x, "crop", torch.Generator().manual_seed(3))
    for img, src in zip(crop, x):  # every crop is a shift of the padded image
        padded = torch.nn.functional.pad(src, (4, 4, 4, 4))
        assert any(torch.equal(img, padded[:, dy : dy + 32, dx : dx + 32]) for dy in range(9) for dx in range(9))
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)
    assert resolve_mode("auto", 1, 8) == "none" and resolve_mode("auto", 3, 32) == "crop-flip"


def _folder(root: Path, split: bool) -> None:
    """Red, green and blue images (PNG and JPEG, odd sizes): trivially separable classes."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("red", "green", "blue")):
        for i in range(12):
            part = ("val" if i < 3 else "train") if split else ""
            d = root / part / name
            d.mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 60, (20 + i, 28, 3)).astype(np.uint8)
            img[..., c] = 200
            Image.fromarray(img).save(d / (f"{i}.png" if i % 2 else f"{i}.jpg"))
    (root / ("train" if split else "") / "red" / "broken.jpg").write_bytes(b"not an image")


@pytest.mark.parametrize("split", [False, True])
def test_image_folder_layouts(tmp_path, split):
    _folder(tmp_path, split)
    data = load_image_folder(tmp_path, 16, val_fraction=0.25, seed=0)
    assert data.x_train.shape[1:] == (3, 16, 16) and data.num_classes == 3
    assert (len(data.y_train), len(data.y_val)) == (27, 9)
    assert any("skipped 1 file" in n for n in data.notes)
    assert sorted(set(data.y_val.tolist())) == [0, 1, 2]


def test_training_on_an_image_folder(store_path, tmp_path):
    _folder(tmp_path / "imgs", split=False)
    cfg = train_config(
        "cnn", "demo", data=f"folder:{tmp_path / 'imgs'}", image_size=16, epochs=3, threads=1, onnx=False
    )
    assert data_shape(cfg) == (3, 16, 3)
    store = JobStore(store_path)
    job = create_job(store, CELL, cfg, "test")
    run_job(store, job)
    assert store.get_job(job).metrics["accuracy"] >= 0.8


def test_networks_fit_the_data_or_fail_before_the_job(tmp_path):
    cfg = train_config("cnn", "demo", network="imagenet", activation="swish", width_multiplier=1.0)
    assert network_config(cfg, 3, 224, 1001) == imagenet_config("swish")  # the published body
    net = planned_network(train_config("cnn", "demo", widths=(8, 16), cells_per_stage=(1, 2)))
    assert (net.in_channels, net.input_size, net.widths, net.cells_per_stage) == (1, 8, (8, 16), (1, 2))
    with pytest.raises(ConfigError, match="imagenet network does not fit digits"):
        planned_network(cfg)
    with pytest.raises(ConfigError, match="one entry per stage"):
        train_config("cnn", "demo", widths=(8, 16), cells_per_stage=(1,))
    with pytest.raises(DataError, match="image folder not found"):
        planned_network(train_config("cnn", "demo", data=f"folder:{tmp_path / 'none'}"))
