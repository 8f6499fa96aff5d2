"""Long-lived objects of the server process, shared by every session and tab.

The Runner must be one per process so a search started from one tab keeps running when
that tab closes and shows in every other tab; st.cache_resource gives exactly that.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from core.runner.threads import Runner, chain_stop_signals
from core.store.jobs import JobStore
from core.store.runs import Store, default_store_path


@st.cache_resource(show_spinner=False)
def get_runner() -> Runner:
    """The process's one Runner (background search threads); when the server process ends
    (SIGTERM, Ctrl-C) its searches and jobs are stopped and marked `stopped`, not left running."""
    runner = Runner()
    runner.stop_at_exit()
    _on_server_loop(lambda: chain_stop_signals(runner))
    return runner


def _on_server_loop(fn) -> bool:
    """Run `fn` on the server's event loop, i.e. the main thread, the only one that may set signal
    handlers. Streamlit has no public way in; its Runtime's loop is reached through a private
    method (streamlit is pinned in requirements.txt, and tests/test_faults_sigterm.py stops a
    real server to prove it). False where there is no server (AppTest): atexit still applies."""
    try:
        from streamlit.runtime import Runtime

        loop = Runtime.instance()._get_async_objs().eventloop
        loop.call_soon_threadsafe(fn)
        return True
    except Exception:  # noqa: BLE001 -- no running server, or Streamlit moved its internals
        return False


@st.cache_resource(show_spinner=False)
def _store_at(path: str) -> JobStore:
    return JobStore(path)


def store_at(path: str | Path) -> JobStore:
    """The one store object of the server process for the file at `path`: every page, both of its
    views (runs via Store, training jobs via JobStore, which is a Store) and the sample import share
    it, so the schema check on opening runs once per file, not on every render."""
    return _store_at(str(Path(path).resolve()))


def get_store() -> Store:
    """The run store named by AUTOSHRINK_STORE (read on every call, so tests can point the
    app at a temporary store) or runs/autoshrink.db."""
    return store_at(default_store_path())


@st.cache_resource(show_spinner=False)
def warm_up(store_path: str) -> bool:
    """Once per server: cost the published cells and the newest run's best snapshot in the
    background (core.insight.compare memoises them per process), so the first visit to
    Compare finds them ready instead of paying torch's first forward passes. The Runner owns
    the thread, so a SIGTERM soon after start-up waits for its cell (or ends the process)
    rather than finalising the interpreter under a forward pass, which aborts it."""
    store = store_at(store_path)  # here, in the script thread: the cache is not for other threads

    def work(stop: threading.Event) -> None:
        from core.cell.presets import load_preset, preset_names
        from core.insight.compare import cnn_costs

        try:
            cells = [load_preset(n) for n in preset_names()]
            runs = store.list_runs()
            best = store.best_step(runs[0].id) if runs else None
            cells += [best.genotype] if best is not None else []
            for g in cells:
                if stop.is_set():
                    return
                if g.kind == "cnn":
                    cnn_costs(g.to_json(), "proxy")
        except Exception:  # noqa: BLE001 - a warm-up must never break the app; Compare costs on demand anyway
            pass

    get_runner().start_helper("compare-warm-up", work)
    return True
