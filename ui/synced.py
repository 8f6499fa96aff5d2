"""Widgets whose value the server moves too: the Explorer's step slider (which buttons, arrow
keys, playback and live following move) and its Follow toggle (which stepping back turns off).

A browser sends every widget's value with every rerun request, the timer reruns of a live
page's fragment included. A timer request sent in the instant after a click, before the
browser has the click's result, still carries the widget's old value; Streamlit takes that for
the student's own change and undoes the click (the key press that "was lost" under load).
So the widget's key carries a version that changes whenever the server moves the value: a
value sent for an older version belongs to a widget that is gone, and is ignored. The value
itself lives in `st.session_state[state_key]`, which the page reads and writes as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def synced(widget: Callable[..., Any], label: str, state_key: str, *args: Any, on_change=None, **kwargs: Any) -> Any:
    """Draw `widget` (st.slider, st.toggle) showing st.session_state[state_key]; a change the
    student makes is copied there, then `on_change` runs. `args` are the widget's positional
    arguments after the label (a slider's min and max)."""
    value = st.session_state[state_key]
    if st.session_state.get(_drawn_key(state_key)) != (value, args):  # moved by the server: a new widget
        st.session_state[_version_key(state_key)] = st.session_state.get(_version_key(state_key), 0) + 1
        st.session_state[_drawn_key(state_key)] = (value, args)
    key = widget_key(state_key)
    return widget(label, *args, value=value, key=key, on_change=_take, args=(key, state_key, args, on_change), **kwargs)


def widget_key(state_key: str) -> str:
    """The key of the widget drawn now for `state_key`."""
    return f"{state_key}__v{st.session_state.get(_version_key(state_key), 0)}"


def _take(key: str, state_key: str, args: tuple, on_change: Callable[[], None] | None) -> None:
    """The student changed the widget: keep its value, unless it comes from an older version."""
    if key != widget_key(state_key):
        return
    value = st.session_state[key]
    st.session_state[state_key] = value
    st.session_state[_drawn_key(state_key)] = (value, args)  # the same widget goes on showing it
    if on_change is not None:
        on_change()


def _drawn_key(state_key: str) -> str:
    return f"{state_key}__drawn"


def _version_key(state_key: str) -> str:
    return f"{state_key}__version"
