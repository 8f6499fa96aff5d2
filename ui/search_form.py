"""The New-search form: a preset (demo, ready to Start) and every knob, validated inline.

Validation is core's (preset_config raises one ConfigError line naming the field); each
knob is checked on its own so its message can sit right under it. Start hands the config
to the process's Runner, which trains in a background thread of the server, so closing
the tab does not stop the search.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data.images import DataError, parse_spec
from core.errors import ConfigError, UserError
from core.search.config import (
    DEVICES,
    EVALUATORS,
    PRECISIONS,
    PRESET_NAMES,
    TASKS,
    SearchConfig,
    preset_config,
)
from core.search.evaluators.ray_eval import cluster_status
from ui.errors import one_line
from ui.resources import get_runner, get_store
from ui.roles import can_change, view_note
from ui.sidebar import select_run

# (field, label, help); the widget kind follows the field's type in SearchConfig.
KNOBS = (
    ("data", "Dataset", "cnn: digits (offline) | cifar10 | cifar10:PATH; rnn: embedded (offline) | ptb | ptb:PATH | ptb-proxy | ptb-proxy:PATH"),
    ("nodes", "Nodes N", "cell size; the search starts from all N(N-1)/2 edges"),
    ("k", "Candidates k", "edges tried per step (the paper uses 10)"),
    ("epochs", "Epochs", "max proxy epochs per candidate"),
    ("keep_fraction", "Keep fraction", "stop at round(F x initial edges)"),
    ("seed", "Seed", "seeds op assignment, edge shuffles and training"),
    ("device", "Device", "auto = CUDA when present"),
    ("precision", "Precision", "auto = bf16 where the hardware runs it natively (AMX or AVX512-BF16 CPUs, "
                               "CUDA capability 8.0+), fp32 elsewhere; the official search trained in fp32"),
    ("evaluator", "Evaluator", "auto = the fastest local path (pool: one worker process per core on a CPU "
                               "with 2+ cores; else batched for CNN, single for RNN); "
                               "ray = candidates as tasks on the Ray cluster shown below"),
    ("max_steps", "Max steps", "0 = until the stop rule"),
    ("noise_seeds", "Noise seeds", "step 0 trains the dense cell this many times to measure noise (1 = off)"),
)
CHOICES = {"device": DEVICES, "evaluator": EVALUATORS, "precision": PRECISIONS}
ERRORS_KEY, TASK_KEY, PRESET_KEY = "form_errors", "form_task", "form_preset"
FORM_ERROR = "_form"


def _key(field: str) -> str:
    return f"form_{field}"


def _load_preset() -> None:
    """Put the chosen preset's values into the knobs (on first render and on every change)."""
    cfg = preset_config(st.session_state[TASK_KEY], st.session_state[PRESET_KEY])
    for field, _, _ in KNOBS:
        st.session_state[_key(field)] = getattr(cfg, field)
    st.session_state[ERRORS_KEY] = {}


def data_problem(task: str, spec: str) -> str:
    """A quick look at the dataset field before a search is queued ('' if it looks usable).

    The loaders still have the last word (a download can fail later); this only catches
    typos and missing local paths while the user is still at the form.
    """
    spec = (spec or "").strip()
    if task == "cnn":
        try:
            _, path = parse_spec(spec)
        except DataError as exc:
            return one_line(exc)
        return f"no CIFAR-10 directory at {path}" if path is not None and not path.exists() else ""
    if spec in ("embedded", "ptb", "ptb-proxy"):
        return ""
    prefix = next((p for p in ("ptb-proxy:", "ptb:") if spec.startswith(p)), "")
    path = Path(spec[len(prefix):]).expanduser()
    if not spec or not path.is_dir():
        return (f"unknown corpus {spec!r}: use embedded, ptb, ptb:PATH, ptb-proxy or ptb-proxy:PATH "
                "(a directory with train/valid/test .txt)")
    return ""


def validate(task: str, preset: str, values: dict) -> dict[str, str]:
    """Field -> one-line message for every knob core refuses; FORM_ERROR for cross-field ones."""
    errors: dict[str, str] = {}
    for field, value in values.items():
        try:
            preset_config(task, preset, **{field: value})
        except ConfigError as exc:
            errors[field] = one_line(exc)
    problem = data_problem(task, values.get("data", ""))
    if problem:
        errors["data"] = problem
    if not errors:
        try:
            preset_config(task, preset, **values)
        except ConfigError as exc:
            errors[FORM_ERROR] = one_line(exc)
    return errors


def _values() -> dict:
    """The knobs as typed config values (number inputs may hand back floats for ints)."""
    types = {f: type(getattr(SearchConfig(), f)) for f, _, _ in KNOBS}
    out = {}
    for field, _, _ in KNOBS:
        value = st.session_state[_key(field)]
        if types[field] is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[field] = value.strip() if isinstance(value, str) else value
    return out


def _start() -> None:
    """Start button callback: validate, then queue the search on the Runner and select it."""
    task, preset = st.session_state[TASK_KEY], st.session_state[PRESET_KEY]
    values = _values()
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
    if _key("nodes") not in st.session_state:
        _load_preset()
    left, right = st.columns(2)
    left.radio("Task", TASKS, key=TASK_KEY, horizontal=True, on_change=_load_preset,
               format_func=lambda t: {"cnn": "CNN (image)", "rnn": "RNN (language model)"}[t])
    right.selectbox("Preset", PRESET_NAMES, key=PRESET_KEY, on_change=_load_preset,
                    help="demo: small and quick on a laptop; paper: the paper's settings")
    errors: dict[str, str] = st.session_state.get(ERRORS_KEY, {})
    with st.form("new_search", border=True):
        cols = st.columns(3)
        for n, (field, label, help_text) in enumerate(KNOBS):
            with cols[n % 3]:
                _knob(field, label, help_text)
                if field in errors:
                    st.error(errors[field], icon=":material/error:")
        if FORM_ERROR in errors:
            st.error(errors[FORM_ERROR], icon=":material/error:")
        st.form_submit_button("Start search", type="primary", on_click=_start, icon=":material/play_arrow:")
    st.caption(f":material/hub: {cluster_status()}")


def _knob(field: str, label: str, help_text: str) -> None:
    """One widget per knob, chosen by the field's type. Numbers are unbounded on purpose:
    out-of-range values get core's message under the field instead of being clamped."""
    key = _key(field)
    if field in CHOICES:
        st.selectbox(label, CHOICES[field], key=key, help=help_text)
    elif isinstance(st.session_state[key], str):
        st.text_input(label, key=key, help=help_text)
    elif isinstance(st.session_state[key], float):
        st.number_input(label, key=key, step=0.05, format="%.2f", help=help_text)
    else:
        st.number_input(label, key=key, step=1, format="%d", help=help_text)
