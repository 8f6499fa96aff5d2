"""Command-line flags made from declared settings (core.settings): one flag per field a user
may set, with its help, choices and the task it applies to, so no flag is written by hand."""

from __future__ import annotations

import argparse

from core.settings import FieldSpec, range_text


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of integers ("24,48,96")."""
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


TYPES = {"int": int, "float": float, "str": str, "ints": ints}


def add_setting_flags(parser: argparse.ArgumentParser, by_task: dict[str, list[FieldSpec]]) -> list[str]:
    """Add `--name` for every field of every task's list (a field shared by tasks once, its
    help saying which task it applies to when only one); returns the field names added."""
    merged: dict[str, tuple[FieldSpec, list[str], list[str]]] = {}
    for task, specs in by_task.items():
        for spec in specs:
            tasks = [spec.setting.task] if spec.setting.task else [task]
            _, seen, helps = merged.setdefault(spec.name, (spec, [], []))
            seen.extend(t for t in tasks if t not in seen)
            if spec.setting.help not in helps:
                helps.append(spec.setting.help)
    for spec, tasks, helps in merged.values():
        only = f"[{tasks[0]}] " if len(tasks) == 1 and len(by_task) > 1 or spec.setting.task else ""
        text = only + "; ".join(helps) + _range_note(spec)
        if spec.kind == "bool":
            parser.add_argument(spec.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(
                spec.flag, type=TYPES[spec.kind], default=None, help=text, choices=spec.setting.choices or None
            )
    return list(merged)


def _range_note(spec: FieldSpec) -> str:
    s = spec.setting
    bounded = s.low is not None or s.high is not None
    return f" ({range_text(s)})" if bounded else ""
