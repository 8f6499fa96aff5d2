"""Who may change things: the instructor's full mode or the students' view-only mode.

A classroom server started with AUTOSHRINK_MODE=view (or `streamlit run app.py -- --view`,
which sets it) lets everyone look at runs but nobody start, stop, resume, train, rename,
delete or reset. The app hides those controls, and because a hidden button is not a
lock, the core's write paths the app uses (Runner, Store.create_run/rename/delete/reset,
stop requests, job creation, the claim that starts or resumes any run or job, and
Store.insert_run, which every bundle import goes through) call `require_write` too and
refuse with one line. The other writes (steps, heartbeats, the final status) only ever follow
a claim, so they need no check of their own. A view-only app server imports no recorded
samples either: the instructor's server (or `import-run`) adds them to the shared store.
"""

from __future__ import annotations

import os

from core.errors import UserError

MODE_ENV = "AUTOSHRINK_MODE"
VIEW, FULL = "view", "full"


class ReadOnlyError(UserError, PermissionError):
    """A change was asked for in view-only mode: one line naming it."""


def mode() -> str:
    """'view' when AUTOSHRINK_MODE says so (read on every call, so a test can switch it), else 'full'."""
    return VIEW if os.environ.get(MODE_ENV, "").strip().lower() == VIEW else FULL


def view_only() -> bool:
    return mode() == VIEW


def require_write(action: str) -> None:
    """Raise ReadOnlyError when this process is view-only; `action` says what was refused."""
    if view_only():
        raise ReadOnlyError(f"{action} is not allowed in view-only mode ({MODE_ENV}=view)")
