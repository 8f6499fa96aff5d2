"""The New-training form: a genotype from any source, a schedule, every setting, Start.

The genotype pickers are Compare's (ui.sources), so a run's best snapshot, any step, a
preset or an uploaded JSON are chosen the same way everywhere. The knobs are generated
from core.training.config's field metadata, the same list the CLI's flags come from, and
validated by core (one ConfigError line under the field it names). Start hands the job to
the process's Runner, which trains in a background thread of the server.
"""

from __future__ import annotations

import json

import streamlit as st

from core.cell.genotype import Genotype
from core.cell.presets import load_preset, preset_names, preset_network
from core.data.spec import PTB_VOCAB, parse_data_spec
from core.errors import ConfigError, UserError
from core.nets.cnn import CNNConfig, cnn_cost
from core.nets.rnn import rnn_cost
from core.store.runs import RunRecord
from core.training.config import (
    DATA,
    GROUPS,
    SCHEDULE,
    field_specs,
    schedule_defaults,
    schedule_names,
    train_config,
)
from core.training.engine import published_defaults
from ui import settings_form
from ui.data_field import data_problem
from ui.errors import one_line
from ui.resources import get_runner, get_store
from ui.roles import can_change, view_note
from ui.sources import SOURCES

SOURCE_KEY, SCHEDULE_KEY, ERRORS_KEY, LOADED_KEY = "train_source", "train_schedule", "train_errors", "train_loaded"
JOB_KEY, PICKED_KEY, FEEDBACK_KEY = "train_job", "train_picked", "train_feedback"
FORM_ERROR = "_form"
NS = "train"


def _load(task: str, schedule: str, implied: dict) -> None:
    """Put a schedule's values (plus what the genotype implies, e.g. Swish) into the knobs."""
    settings_form.load(NS, field_specs(task), schedule_defaults(task, schedule), implied)
    st.session_state[ERRORS_KEY] = {}


def implied_settings(g: Genotype) -> dict:
    """What a published genotype implies for training (ShrinkCNN-B: Swish); {} for others."""
    for name in preset_names():
        preset = load_preset(name)
        if preset == g and preset.name == g.name:
            return published_defaults(preset_network(name), g.kind)
    return {}


def values(task: str) -> dict:
    """The knobs as typed config values."""
    return settings_form.values(NS, field_specs(task))


def validate(task: str, schedule: str, given: dict) -> dict[str, str]:
    """Field -> one-line message for every setting core refuses; FORM_ERROR for cross-field ones."""
    errors: dict[str, str] = {}
    for field, value in given.items():
        if isinstance(value, str) and field in ("widths", "cells_per_stage"):
            errors[field] = f"{value!r} is not a comma-separated list of integers"
            continue
        try:
            train_config(task, schedule, **{field: value})
        except (ConfigError, TypeError) as exc:
            errors[field] = one_line(exc)
    if "data" not in errors:
        problem = data_problem(task, str(given.get("data", "")), search=False)
        if problem:
            errors["data"] = problem
    if errors:
        return errors
    try:
        cfg = train_config(task, schedule, **given)
    except UserError as exc:
        return {FORM_ERROR: one_line(exc)}
    if task == "cnn":
        from core.training.cnn import data_shape, network_config

        try:
            shape = data_shape(cfg)
        except UserError as exc:
            return {"data": one_line(exc)}
        try:
            network_config(cfg, *shape)
        except UserError as exc:
            return {"network": one_line(exc)}
    return {}


@st.cache_data(show_spinner=False, max_entries=64)
def _cnn_cost(genotype_json: str, net_json: str) -> tuple[int, int]:
    """Params and MACs of a planned network; cached (the ImageNet body costs seconds to count)."""
    cost = cnn_cost(Genotype.from_json(genotype_json), CNNConfig.from_dict(json.loads(net_json)))
    return cost.params, cost.macs or 0


@st.cache_data(show_spinner=False, max_entries=8)
def _corpus_vocab(spec: str, max_vocab: int) -> int:
    from core.data.corpus import load_corpus

    return load_corpus(spec, max_vocab=max_vocab or None).vocab_size


def cost_line(g: Genotype, task: str, schedule: str, given: dict) -> str:
    """The planned model's size, so users see the cost before pressing Start."""
    try:
        cfg = train_config(task, schedule, **given)
        if task == "cnn":
            from core.training.cnn import network_config, planned_network

            note = ""
            try:
                net = planned_network(cfg)
            except UserError:
                if cfg.network != "imagenet":
                    raise
                # No image folder named yet: price the published body on ImageNet's 1001 classes.
                net, note = network_config(cfg, 3, cfg.image_side(), 1001), ", 1001 classes"
            params, macs = _cnn_cost(g.to_json(), json.dumps(net.to_dict()))
            return (
                f"Network: {params:,} params, {macs:,} MACs per {net.input_size}x{net.input_size} image "
                f"({cfg.network} body, {len(net.widths)} stages{note})"
            )
        spec = parse_data_spec(cfg.data, "rnn")  # a download's vocabulary is PTB's until it is loaded
        vocab = cfg.max_vocab or (PTB_VOCAB if spec.downloads else _corpus_vocab(str(spec), 0))
        cost = rnn_cost(g, cfg.emb, cfg.hidden, vocab)
        return f"Language model: {cost.params:,} params (vocabulary {vocab:,}), {cost.flops:,} cell FLOPs per token"
    except (UserError, ValueError) as exc:
        return f"cost unavailable: {one_line(exc)}"


def _start(g: Genotype, source: str, task: str) -> None:
    schedule = st.session_state[SCHEDULE_KEY]
    given = values(task)
    errors = validate(task, schedule, given)
    if not errors:
        try:
            job_id = get_runner().start_train(get_store(), g, train_config(task, schedule, **given), source)
            st.session_state[JOB_KEY] = job_id
            st.session_state[FEEDBACK_KEY] = f"Job #{job_id} started: its progress and curves are on the right."
        except UserError as exc:
            errors[FORM_ERROR] = one_line(exc)
    st.session_state[ERRORS_KEY] = errors
    if errors:
        st.session_state[FEEDBACK_KEY] = "Not started: " + (
            errors.get(FORM_ERROR) or f"{len(errors)} setting(s) need a fix (marked below)"
        )


def _start_row(g: Genotype, source: str, task: str) -> None:
    """Start with its outcome beside it, near the top of the form (not under the knobs)."""
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button(
            "Start training",
            type="primary",
            key="train_start",
            on_click=_start,
            args=(g, source, task),
            icon=":material/play_arrow:",
            width="content",
        )
        feedback = st.session_state.get(FEEDBACK_KEY, "")
        if feedback:
            (st.warning if feedback.startswith("Not started") else st.success)(feedback)


def train_form(default_run: RunRecord | None) -> None:
    """Genotype source and picker, schedule, the knobs in groups, the planned cost, Start."""
    store = get_store()
    names = list(SOURCES)
    st.session_state.setdefault(SOURCE_KEY, "Run best snapshot" if default_run is not None else "Preset")
    source = st.selectbox("Genotype from", names, key=SOURCE_KEY)
    item = SOURCES[source]("train-genotype", store, default_run)
    if item is None:
        st.info("Pick a genotype to train.")
        return
    g, task = item.genotype, item.genotype.kind
    schedules = schedule_names(task)
    if st.session_state.get(SCHEDULE_KEY) not in schedules:
        st.session_state[SCHEDULE_KEY] = "demo"
    st.selectbox(
        "Schedule",
        schedules,
        key=SCHEDULE_KEY,
        help="demo: minutes on a laptop; cifar: a standard CIFAR-10 recipe; paper: the paper's "
        "settings (ImageNet-224 body for CNNs, e = h = 745 on PTB for ShrinkRNN)",
    )
    # A new task or schedule reloads every knob; a new genotype only brings what it implies
    # (ShrinkCNN-B: Swish), so settings the user typed survive picking another cell.
    loaded, picked = (task, st.session_state[SCHEDULE_KEY]), (g.name, g.hash)
    if st.session_state.get(LOADED_KEY) != loaded:
        _load(task, st.session_state[SCHEDULE_KEY], implied_settings(g))
        st.session_state[LOADED_KEY] = loaded
    elif st.session_state.get(PICKED_KEY) != picked:
        for field, value in implied_settings(g).items():
            st.session_state[settings_form.key(NS, field)] = value
    st.session_state[PICKED_KEY] = picked
    st.caption(f"{task.upper()} cell **{item.label}** ({item.source}), {g.pruned().num_edges} edges")
    if not can_change():
        view_note()
        return
    _start_row(g, f"{item.source}: {item.label}", task)

    errors: dict[str, str] = st.session_state.get(ERRORS_KEY, {})
    settings_form.draw(NS, field_specs(task), GROUPS, (DATA, SCHEDULE), errors)
    st.caption(cost_line(g, task, st.session_state[SCHEDULE_KEY], values(task)))
    if FORM_ERROR in errors:
        st.error(errors[FORM_ERROR], icon=":material/error:")
