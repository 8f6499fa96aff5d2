"""The one dataset-spec parser: every form, every refusal, and the start check behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data.check import check_data
from core.data.spec import DataError, DataSpec, DataSpecError, Source, parse_data_spec, spec_forms
from core.errors import ConfigError
from core.search.config import preset_config

SHARED = Path(__file__).parents[1] / ".." / "shared" / "data"


@pytest.mark.parametrize(
    "text, source, path",
    [
        ("digits", Source.DIGITS, None),
        ("cifar10", Source.CIFAR10, None),
        ("cifar10:/data/c", Source.CIFAR10, Path("/data/c")),
        ("folder:/imgs", Source.FOLDER, Path("/imgs")),
        ("embedded", Source.EMBEDDED, None),
        ("ptb", Source.PTB, None),
        ("ptb:/d/ptb", Source.PTB, Path("/d/ptb")),
        ("ptb-proxy", Source.PTB_PROXY, None),
        ("ptb-proxy:/d/p", Source.PTB_PROXY, Path("/d/p")),
        ("  ptb-proxy: /d/p ", Source.PTB_PROXY, Path("/d/p")),
    ],
)
def test_every_form_parses_to_its_typed_value(text: str, source: Source, path: Path | None) -> None:
    spec = parse_data_spec(text)
    assert spec == DataSpec(source, path)
    assert parse_data_spec(str(spec)) == spec  # the canonical text parses back to the same value


def test_home_is_expanded() -> None:
    assert parse_data_spec("ptb:~/x").path == Path("~/x").expanduser()


@pytest.mark.parametrize(
    "text, task, search, fragment",
    [
        ("mnist", "cnn", True, "unknown dataset 'mnist'"),
        ("wikitext", "rnn", True, "unknown corpus 'wikitext'"),
        ("cifar10:", "cnn", True, "cifar10:PATH"),
        ("digits:/x", None, False, "digits takes no path"),
        ("folder:", "cnn", False, "folder: needs a path"),
        ("folder", "cnn", False, "folder: needs a path"),
        ("folder:/x", "cnn", True, "unknown dataset"),  # a search cannot train on an image folder
        ("embedded", "cnn", False, "unknown dataset 'embedded'"),  # a corpus is no image dataset
        ("digits", "rnn", False, "unknown corpus 'digits'"),
        ("", "cnn", False, "unknown dataset"),
    ],
)
def test_refusals_are_one_line(text: str, task: str | None, search: bool, fragment: str) -> None:
    with pytest.raises(DataSpecError) as err:
        parse_data_spec(text, task, search)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_forms_listed_per_task_and_stage() -> None:
    assert spec_forms("cnn", search=True) == ["digits", "cifar10", "cifar10:PATH"]
    assert spec_forms("cnn") == ["digits", "cifar10", "cifar10:PATH", "folder:PATH"]
    assert spec_forms("rnn", search=True) == ["embedded", "ptb", "ptb:PATH", "ptb-proxy", "ptb-proxy:PATH"]


def test_a_bare_corpus_directory_means_ptb(tmp_path: Path) -> None:
    assert parse_data_spec(str(tmp_path), "rnn") == DataSpec(Source.PTB, tmp_path)


def test_check_finds_missing_and_incomplete_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus directory not found"):
        check_data(f"ptb-proxy:{tmp_path / 'none'}", "rnn")
    (tmp_path / "train.txt").write_text("a b\n")
    with pytest.raises(DataError, match="lacks valid.txt, test.txt"):
        check_data(f"ptb-proxy:{tmp_path}", "rnn")
    with pytest.raises(DataError, match="CIFAR-10 directory not found"):
        check_data(f"cifar10:{tmp_path / 'none'}", "cnn")
    assert check_data("ptb-proxy", "rnn") == DataSpec(Source.PTB_PROXY)  # downloads: checked on load


@pytest.mark.skipif(not (SHARED / "ptb-proxy").is_dir(), reason="../shared/data/ptb-proxy is absent")
def test_the_shared_proxy_corpus_passes_the_start_check() -> None:
    spec = check_data(f"ptb-proxy:{SHARED / 'ptb-proxy'}", "rnn", search=True)
    assert spec.source is Source.PTB_PROXY


def test_search_config_refuses_a_bad_spec_as_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown corpus 'mnist'"):
        preset_config("rnn", "demo", data="mnist")
    assert preset_config("rnn", "paper").data_spec == DataSpec(Source.PTB_PROXY)
