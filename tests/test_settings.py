"""Declared settings: every search and training setting a user may set is declared once and
reaches a flag, a form knob, the dry-run listing and validation from that one declaration."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import build_parser, main
from core.errors import ConfigError
from core.search.config import SearchConfig, preset_config
from core.settings import field_specs
from core.training.config import CONFIG_CLASSES
from core.training.config import field_specs as train_fields

ROOT = Path(__file__).resolve().parents[1]
ONCE_MISSING = {
    "weight_decay",
    "bptt",
    "clip",
    "max_vocab",
    "stem_channels",
    "base_width",
    "per_class_train",
    "per_class_val",
    "emb",
    "hidden",
}


def _flags(*command: str) -> set[str]:
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    parser = sub[command[0]]
    return {s for a in parser._actions for s in a.option_strings}


def test_every_search_field_is_declared_and_has_a_flag() -> None:
    declared = {s.name for s in field_specs(SearchConfig, user_only=False)}
    assert declared == {f.name for f in fields(SearchConfig)}
    users = field_specs(SearchConfig)
    assert len(users) >= 25 and ONCE_MISSING <= {s.name for s in users}
    assert {s.flag for s in users} <= _flags("search")


def test_every_training_field_has_a_flag() -> None:
    for task, cls in CONFIG_CLASSES.items():
        specs = train_fields(task)
        assert specs and {s.name for s in specs} == {f.name for f in fields(cls)} - {"task", "schedule"}
        assert {s.flag for s in specs} <= _flags("train")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--bptt", "0", "bptt must be at least 1, not 0"),
        ("--clip", "0", "clip must be > 0, not 0.0"),
        ("--weight-decay", "-1", "weight decay must be >= 0, not -1.0"),
        ("--per-class-val", "0", "per class val must be at least 1, not 0"),
        ("--nodes", "17", "nodes must be in 2..16, not 17"),
        ("--keep-fraction", "1", "keep fraction must be in [0, 1), not 1.0"),
    ],
)
def test_ranges_come_from_the_declaration(flag: str, value: str, message: str, capsys) -> None:
    task = "rnn" if flag in ("--bptt", "--clip") else "cnn"
    assert main(["search", task, flag, value, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_new_flags_reach_the_config(capsys) -> None:
    assert (
        main(
            [
                "search",
                "rnn",
                "--bptt",
                "20",
                "--clip",
                "0.5",
                "--emb",
                "32",
                "--hidden",
                "32",
                "--max-vocab",
                "300",
                "--dry-run",
                "--json",
            ]
        )
        == 0
    )
    import json

    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["bptt"], cfg["clip"], cfg["emb"], cfg["max_vocab"]) == (20, 0.5, 32, 300)


def test_dry_run_lists_every_setting_of_the_task(capsys) -> None:
    assert main(["search", "cnn", "--preset", "demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for spec in field_specs(SearchConfig, "cnn"):
        assert spec.flag in out and spec.setting.help in out
    assert "--bptt" not in out  # an RNN-only setting is not listed for a CNN search


def test_cross_field_rules_still_hold() -> None:
    with pytest.raises(ConfigError, match="must equal hidden"):
        preset_config("rnn", "demo", emb=32)


@pytest.mark.parametrize("task", ["cnn", "rnn"])
def test_the_search_form_has_a_knob_for_every_setting_of_the_task(task: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOSHRINK_STORE", str(tmp_path / "runs.db"))
    monkeypatch.setenv("AUTOSHRINK_SAMPLES", "off")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("views/search.py").run()
    at.radio(key="form_task").set_value(task).run()
    keys = {w.key for kind in ("number_input", "text_input", "selectbox", "checkbox") for w in at.get(kind)}
    assert {f"search.{s.name}" for s in field_specs(SearchConfig, task)} <= keys
    assert at.text_input(key="search.data").value == preset_config(task, "demo").data
