"""The instructor's housekeeping: rename a run, delete one, reset a whole store.

Separate from the search's write path (runs.py) because these are the only operations
that change or remove recorded history; each refuses in view-only mode and never touches
a run or job that is still queued or running (its thread would write into a hole).
"""

from __future__ import annotations

import shutil

from core.store.access import require_write
from core.store.controls import delete_control, get_control
from core.store.jobs import JobStore
from core.store.runs import RunStatus, Store, StoreError

MAX_NAME = 80


def rename_run(store: Store, run_id: int, name: str) -> str:
    """Give a run a display name ('' clears it); returns the name as stored."""
    require_write("renaming a run")
    store.get_run(run_id)  # unknown id: StoreError
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise StoreError(f"a run name has at most {MAX_NAME} characters, not {len(name)}")
    with store.transaction() as con:
        con.execute("UPDATE runs SET name=? WHERE id=?", (name, run_id))
    return name


def delete_run(store: Store, run_id: int) -> None:
    """Remove a run with its steps and candidates; a queued or running one is refused."""
    require_write("deleting a run")
    run = store.get_run(run_id)
    if run.status.live:
        raise StoreError(f"run {run_id} is {run.status}: stop it before deleting it")
    control = get_control(store, run_id)
    if control is not None and RunStatus(control.status).live:
        raise StoreError(f"the random control of run {run_id} is {control.status}: stop it before deleting the run")
    with store.transaction() as con:
        delete_control(con, run_id)
        for table in ("candidates", "steps"):
            con.execute(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
        con.execute("DELETE FROM runs WHERE id=?", (run_id,))


def reset_store(store: Store) -> int:
    """Empty the store (runs, steps, candidates, training jobs and their files); refused while
    any run or job is live. Returns how many runs were removed."""
    require_write("resetting the store")
    jobs = JobStore(store.path)
    busy = (
        [f"run {r.id}" for r in store.list_runs() if r.status.live]
        + [f"job {j.id}" for j in jobs.list_jobs() if j.status.live]
        + [
            f"the control of run {r.id}"
            for r in store.list_runs()
            if (c := get_control(store, r.id)) is not None and RunStatus(c.status).live
        ]
    )
    if busy:
        raise StoreError(f"cannot reset while {', '.join(busy)} {'is' if len(busy) == 1 else 'are'} live: stop first")
    n, job_ids = len(store.list_runs()), [j.id for j in jobs.list_jobs()]
    with store.transaction() as con:
        delete_control(con, None)
        for table in ("candidates", "steps", "runs", "job_epochs", "jobs"):
            con.execute(f"DELETE FROM {table}")
    for job_id in job_ids:  # only this store's job folders: another store may share the directory
        shutil.rmtree(jobs.job_dir(job_id), ignore_errors=True)
    return n
