"""The knobs of a settings form, made from declared settings (core.settings): the Search and
Train forms draw, load and read their widgets here, so a new setting needs no UI code.

Widget keys live in their own namespace (`search.nodes`, `train.lr`), apart from the pages'
other session keys. Numbers are unbounded widgets on purpose: an out-of-range value gets
core's one-line message under its knob instead of being silently clamped.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.settings import FieldSpec


def key(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def _shown(spec: FieldSpec, value: Any) -> Any:
    """Tuples of ints are edited as "24, 48, 96" text."""
    return ", ".join(str(v) for v in value) if spec.kind == "ints" else value


def load(namespace: str, specs: list[FieldSpec], cfg: Any, implied: dict | None = None) -> None:
    """Put `cfg`'s values (and what `implied` overrides) into the knobs."""
    implied = implied or {}
    for spec in specs:
        st.session_state[key(namespace, spec.name)] = _shown(spec, implied.get(spec.name, getattr(cfg, spec.name)))


def values(namespace: str, specs: list[FieldSpec]) -> dict:
    """The knobs as typed config values; a malformed integer list stays text for the validator."""
    out = {}
    for spec in specs:
        value = st.session_state.get(key(namespace, spec.name), spec.default)
        if spec.kind == "ints" and isinstance(value, str):
            try:
                value = tuple(int(v) for v in value.replace(" ", "").split(",") if v)
            except ValueError:
                pass
        elif spec.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            value = value.strip()
        out[spec.name] = value
    return out


def knob(namespace: str, spec: FieldSpec) -> None:
    """One widget per setting, chosen by its choices and value kind."""
    k, help_text = key(namespace, spec.name), spec.setting.help
    label = spec.label[:1].upper() + spec.label[1:]
    if spec.setting.choices:
        st.selectbox(label, spec.setting.choices, key=k, help=help_text)
    elif spec.kind == "bool":
        st.checkbox(label, key=k, help=help_text)
    elif spec.kind == "float":
        st.number_input(label, key=k, step=None, format="%g", help=help_text)
    elif spec.kind == "int":
        st.number_input(label, key=k, step=1, format="%d", help=help_text)
    else:
        st.text_input(label, key=k, help=help_text)


def draw(
    namespace: str,
    specs: list[FieldSpec],
    groups: tuple[str, ...],
    open_groups: tuple[str, ...],
    errors: dict[str, str],
) -> None:
    """The knobs in one expander per group, three columns, each field's error under it."""
    for group in groups:
        members = [s for s in specs if s.setting.group == group]
        if not members:
            continue
        with st.expander(group, expanded=group in open_groups or any(s.name in errors for s in members)):
            cols = st.columns(3)
            for n, spec in enumerate(members):
                with cols[n % 3]:
                    knob(namespace, spec)
                    if spec.name in errors:
                        st.error(errors[spec.name], icon=":material/error:")
