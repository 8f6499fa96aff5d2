"""The New-search form: a preset (demo, ready to Start) and every knob, validated inline.

Validation is core's (preset_config raises one ConfigError line naming the field); each
knob is checked on its own so its message can sit right under it. Start hands the config
to the process's Runner, which trains in a background thread of the server, so closing
the tab does not stop the search.
"""

from __future__ import annotations

import streamlit as st

from core.errors import ConfigError, UserError
from core.search.config import BASIC, GROUPS, PRESET_NAMES, TASKS, SearchConfig, preset_config
from core.search.evaluators.ray_eval import cluster_status
from core.settings import field_specs
from ui import settings_form
from ui.data_field import data_problem
from ui.errors import one_line
from ui.resources import get_runner, get_store
from ui.roles import can_change, view_note
from ui.selection import select_run

NS = "search"
ERRORS_KEY, TASK_KEY, PRESET_KEY = "form_errors", "form_task", "form_preset"
FORM_ERROR = "_form"


def _specs(task: str) -> list:
    return field_specs(SearchConfig, task)


def _load_preset() -> None:
    """Put the chosen preset's values into the knobs (on first render and on every change)."""
    task = st.session_state[TASK_KEY]
    settings_form.load(NS, _specs(task), preset_config(task, st.session_state[PRESET_KEY]))
    st.session_state[ERRORS_KEY] = {}


def validate(task: str, preset: str, values: dict) -> dict[str, str]:
    """Field -> one-line message for every knob core refuses; FORM_ERROR for cross-field ones."""
    errors: dict[str, str] = {}
    for field, value in values.items():
        try:
            preset_config(task, preset, **{field: value})
        except ConfigError as exc:
            errors[field] = one_line(exc)
    problem = data_problem(task, values.get("data", ""), search=True)
    if problem:
        errors["data"] = problem
    if not errors:
        try:
            preset_config(task, preset, **values)
        except ConfigError as exc:
            errors[FORM_ERROR] = one_line(exc)
    return errors


def _start() -> None:
    """Start button callback: validate, then queue the search on the Runner and select it."""
    task, preset = st.session_state[TASK_KEY], st.session_state[PRESET_KEY]
    values = settings_form.values(NS, _specs(task))
    errors = validate(task, preset, values)
    if not errors:
        try:
            run_id = get_runner().start_search(get_store(), preset_config(task, preset, **values))
            select_run(run_id)
        except UserError as exc:
            errors[FORM_ERROR] = one_line(exc)
    st.session_state[ERRORS_KEY] = errors


def search_form() -> None:
    """Task and preset (outside the form: they reload the knobs), then the knobs and Start."""
    if not can_change():
        view_note()
        return
    st.session_state.setdefault(TASK_KEY, "cnn")
    st.session_state.setdefault(PRESET_KEY, "demo")
    if settings_form.key(NS, "nodes") not in st.session_state:
        _load_preset()
    left, right = st.columns(2)
    left.radio(
        "Task",
        TASKS,
        key=TASK_KEY,
        horizontal=True,
        on_change=_load_preset,
        format_func=lambda t: {"cnn": "CNN (image)", "rnn": "RNN (language model)"}[t],
    )
    right.selectbox(
        "Preset",
        PRESET_NAMES,
        key=PRESET_KEY,
        on_change=_load_preset,
        help="demo: small and quick on a laptop; paper: the paper's settings",
    )
    errors: dict[str, str] = st.session_state.get(ERRORS_KEY, {})
    with st.form("new_search", border=True):
        settings_form.draw(NS, _specs(st.session_state[TASK_KEY]), GROUPS, (BASIC,), errors)
        if FORM_ERROR in errors:
            st.error(errors[FORM_ERROR], icon=":material/error:")
        st.form_submit_button("Start search", type="primary", on_click=_start, icon=":material/play_arrow:")
    st.caption(f":material/hub: {cluster_status()}")
