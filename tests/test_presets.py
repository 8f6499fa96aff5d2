"""Presets: the shipped ShrinkCNN cells, the asset-folder loader, and genotype arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cell import presets
from core.cell.genotype import Genotype, GenotypeError
from core.cell.presets import load_genotype_arg, load_preset, preset_names, preset_network

SHRINK_EDGES = ((0, 1), (0, 2), (0, 3), (0, 4), (1, 3), (2, 4))


def test_shipped_presets_listed_sorted() -> None:
    names = preset_names()
    assert {"shrinkcnn-a", "shrinkcnn-b"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize(
    "name, title, activation", [("shrinkcnn-a", "ShrinkCNN-A", "relu"), ("shrinkcnn-b", "ShrinkCNN-B", "swish")]
)
def test_shrinkcnn_presets(name: str, title: str, activation: str) -> None:
    g = load_preset(name)
    assert g.name == title and g.kind == "cnn"
    assert g.ops == ("input", "sep3x3", "sep3x3", "sep3x3", "conv1x1")
    assert g.edges == SHRINK_EDGES
    assert g.leaves() == (3, 4)
    assert preset_network(name) == {"config": "imagenet", "activation": activation}


def test_every_shipped_preset_loads() -> None:
    names = preset_names()
    assert names
    for name in names:
        assert isinstance(load_preset(name), Genotype)
        assert isinstance(preset_network(name), dict)


def test_unknown_preset_is_one_line_genotype_error() -> None:
    with pytest.raises(GenotypeError) as info:
        load_preset("nope")
    msg = str(info.value)
    assert "unknown preset 'nope'" in msg and "shrinkcnn-a" in msg and "\n" not in msg
    with pytest.raises(GenotypeError):
        load_preset("../core/genotype")  # only listed stems, never a path


def test_new_asset_file_picked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(presets.ASSETS_DIR / "shrinkcnn-a.json", tmp_path / "shrinkcnn-a.json")
    (tmp_path / "shrinkrnn.json").write_text(Genotype.dense("rnn", 6, seed=1, name="R").to_json())
    monkeypatch.setattr(presets, "ASSETS_DIR", tmp_path)
    assert preset_names() == ["shrinkcnn-a", "shrinkrnn"]
    assert load_preset("shrinkrnn").kind == "rnn"
    assert preset_network("shrinkrnn") == {}


def test_genotype_arg_preset_and_file(tmp_path: Path) -> None:
    assert load_genotype_arg("preset:shrinkcnn-b").name == "ShrinkCNN-B"
    path = tmp_path / "g.json"
    g = Genotype.dense("cnn", 5, seed=3, name="mine")
    path.write_text(g.to_json())
    assert load_genotype_arg(str(path)) == g
    with pytest.raises(GenotypeError, match="unknown preset"):
        load_genotype_arg("preset:missing")


@pytest.mark.parametrize(
    "content, expect",
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"kind": "cnn", "ops": ["input", "sep3x3"], "edges": [[1, 0]]}), "backward"),
        (json.dumps({"kind": "cnn", "ops": ["input"]}), "lacks edges"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
    ],
)
def test_genotype_arg_bad_file(tmp_path: Path, content: str | bytes | None, expect: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(GenotypeError) as info:
        load_genotype_arg(str(path))
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_genotype_arg_directory(tmp_path: Path) -> None:
    with pytest.raises(GenotypeError, match="directory"):
        load_genotype_arg(str(tmp_path))
