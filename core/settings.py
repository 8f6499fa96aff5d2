"""Declared settings: a config dataclass field carries its help, range, choices and group once,
and the CLI flags, the forms' knobs, the dry-run listing and validation are all made from that.

Before this, a search setting was declared in four places (the dataclass, a flag, a form
knob, a validation line) and they drifted: ten search fields had no flag at all.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from core.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """What a config field means to a user. `low`/`high` bound numbers (inclusive unless the
    matching `*_open` is set); `task` names the one task a field applies to ("" = both);
    `user=False` marks fields the user does not set directly (the task, the preset)."""

    help: str
    label: str = ""
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    group: str = "Run"
    task: str = ""
    user: bool = True


@dataclass(frozen=True)
class FieldSpec:
    """One field of a config class: its name, value kind and default, and its Setting."""

    name: str
    kind: str  # "int", "float", "str", "bool" or "ints" (a tuple of ints)
    default: Any
    setting: Setting

    @property
    def label(self) -> str:
        return self.setting.label or self.name.replace("_", " ")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, task: str) -> bool:
        return not self.setting.task or self.setting.task == task


def setting(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field declared with its Setting (see Setting for the keywords)."""
    info = {"setting": Setting(help=help, **meta)}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=info)
    return field(default=default, metadata=info)


def field_specs(cls: type, task: str | None = None, user_only: bool = True) -> list[FieldSpec]:
    """The declared fields of `cls` (those of `task`, when given), in declaration order."""
    out = []
    for f in fields(cls):
        meta = f.metadata.get("setting")
        if meta is None or (user_only and not meta.user):
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        kind = "ints" if isinstance(default, tuple) else type(default).__name__
        spec = FieldSpec(f.name, kind, default, meta)
        if task is None or spec.applies_to(task):
            out.append(spec)
    return out


def check_settings(cfg: Any) -> None:
    """Raise ConfigError (one line naming the field) for the first value that is not finite,
    not among its choices, or out of its range."""
    for spec in field_specs(type(cfg), user_only=False):
        problem = _problem(spec, getattr(cfg, spec.name))
        if problem:
            raise ConfigError(f"{spec.label} {problem}")


def _problem(spec: FieldSpec, value: Any) -> str:
    s = spec.setting
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if s.choices and value not in s.choices:
        return f"must be one of {', '.join(map(str, s.choices))}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    too_low = s.low is not None and (value <= s.low if s.low_open else value < s.low)
    too_high = s.high is not None and (value >= s.high if s.high_open else value > s.high)
    return f"must be {range_text(s)}, not {value}" if too_low or too_high else ""


def range_text(s: Setting) -> str:
    """The range in words: 'in 2..16', 'in [0, 1)', 'at least 1', '>= 0', '> 0'."""
    if s.low is not None and s.high is not None:
        if s.low_open or s.high_open:
            return f"in {'(' if s.low_open else '['}{s.low:g}, {s.high:g}{')' if s.high_open else ']'}"
        return f"in {s.low:g}..{s.high:g}"
    if s.low is not None:
        if s.low_open:
            return f"> {s.low:g}"
        return f">= {s.low:g}" if s.low <= 0 else f"at least {s.low:g}"
    if s.high is not None:
        return f"< {s.high:g}" if s.high_open else f"<= {s.high:g}"
    return "any value"
