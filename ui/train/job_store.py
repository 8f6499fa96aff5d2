"""The training-job view of the run store: the same one store object per file as every page
(ui.resources.store_at), so the Train page's 2-second refresh and Compare's picker never
re-run the schema check on opening.
"""

from __future__ import annotations

from core.store.jobs import JobStore
from ui.resources import get_store, store_at


def job_store_at(path: str) -> JobStore:
    """The JobStore on `path` (Compare pickers are handed a Store; this is its jobs view)."""
    return store_at(path)


def get_job_store() -> JobStore:
    """The JobStore on the store the sidebar shows (AUTOSHRINK_STORE or the default)."""
    return store_at(get_store().path)
