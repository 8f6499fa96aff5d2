"""The job panel of the Train page: pick a job, Stop/Resume it, watch its curves, get its exports.

Like the Search page's live panel, everything is re-read from the store every REFRESH_S
(a fragment), so a job started from the CLI, another tab or before a browser refresh
shows the same; nothing depends on this session having started it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import streamlit as st

from core.insight.format import fmt_duration, quality_text
from core.store.jobs import JobRecord, JobStore
from core.store.lifecycle import RunStatus
from core.training.export import rebuild_snippet
from ui.errors import report
from ui.resources import get_runner, get_store
from ui.status import rerun_on_change, status_header
from ui.train.figures import result_rows, training_figure
from ui.train.form import JOB_KEY
from ui.train.job_store import get_job_store

REFRESH_S = 2.0
MESSAGE_KEY = "train_message"


def job_label(job: JobRecord) -> str:
    """Stable picker label (no status: a changing label would lose the selection)."""
    return f"#{job.id} {job.task} {job.name} · {job.config.get('data', '')}"


def _stop(job_id: int) -> None:
    get_runner().stop(get_store(), job_id, kind="train")
    st.session_state[MESSAGE_KEY] = f"stop requested for job {job_id}: it ends after the current batch"


def _resume(job_id: int) -> None:
    done = f"job {job_id} resumed from its last checkpoint"
    report(MESSAGE_KEY, lambda: get_runner().resume_train(get_store(), job_id), done)


def download_name(job: JobRecord, path: str | Path) -> str:
    """A download named by its job, e.g. job12-shrinkcnn-a.onnx (every job exports model.onnx,
    so the file name alone would collide in a Downloads folder)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (job.name or "").lower()).strip("-")
    stem = Path(path).stem
    stem = "" if stem in ("model", "genotype") else f"-{stem}"  # model.pt and model.onnx differ by suffix
    kind = "-genotype" if Path(path).name == "genotype.json" else ""
    return f"job{job.id}{'-' + slug if slug else ''}{stem}{kind}{Path(path).suffix}"


def _fraction(job: JobRecord, done: int) -> float:
    if job.status == RunStatus.FINISHED:
        return 1.0
    p = job.progress
    if job.status.live and p.fraction is not None:
        return float(p.fraction)
    return min(1.0, done / max(int(job.config.get("epochs", 1)), 1))


@st.fragment(run_every=REFRESH_S)
def job_panel() -> None:
    """The chosen job (default: the newest), re-read from the store on every refresh."""
    store = get_job_store()
    jobs = store.list_jobs()
    if not jobs:
        st.info("No training jobs yet: pick a genotype and press **Start training**.")
        return
    ids = [j.id for j in jobs]
    if st.session_state.get(JOB_KEY) not in ids:
        st.session_state[JOB_KEY] = ids[0]
    by_id = {j.id: j for j in jobs}
    st.selectbox("Job", ids, key=JOB_KEY, format_func=lambda i: job_label(by_id[i]))
    job = by_id[st.session_state[JOB_KEY]]
    rerun_on_change(f"train job {job.id}", job.status)
    rows = [r.to_dict() for r in store.epochs(job.id)]
    _header(job)
    _progress(job, len(rows))
    if rows:
        st.plotly_chart(training_figure(rows, job.task), width="stretch", key="train_curves")
        st.caption(quality_text(job.metrics) if job.metrics else f"{len(rows)} epoch(s) recorded")
    if job.status == RunStatus.FINISHED:
        _results(store, job, rows)


def _header(job: JobRecord) -> None:
    cfg = job.config
    st.subheader(f"Job #{job.id}: {job.task.upper()} · {job.name} · {cfg.get('schedule')} · {cfg.get('data')}")
    status_header(
        "job",
        job.id,
        job.status,
        job.device,
        f"from {job.source or '-'}",
        job.error,
        _stop,
        _resume,
        MESSAGE_KEY,
        "its last checkpoint",
        key="train",
    )


def _progress(job: JobRecord, done: int) -> None:
    p, epochs = job.progress, job.config.get("epochs")
    text = f"{done} of {epochs} epochs"
    if job.status.live and p.active:
        text += f" · epoch {p.epoch}: {p.phase}"
        if p.phase == "train":
            text += f", batch {p.batch} of {p.batches}"
    st.progress(_fraction(job, done), text=text)
    start = job.started_at or job.created_at
    end = job.finished_at if not job.status.live and job.finished_at else time.time()
    eta = p.eta_s if job.status.live else None
    st.caption(f"elapsed {fmt_duration(end - start)}" + (f" · ETA {fmt_duration(eta)}" if eta is not None else ""))


def _results(store: JobStore, job: JobRecord, rows: list[dict]) -> None:
    """Per-epoch table, the exports, and the snippet that rebuilds the model."""
    st.markdown("**Results**")
    st.dataframe(result_rows(rows), hide_index=True, width="stretch")
    exports = job.metrics.get("exports") or {}
    directory = Path(exports.get("dir", store.job_dir(job.id)))
    files = [
        ("weights", "State dict (.pt)", "application/octet-stream"),
        ("onnx", "ONNX", "application/octet-stream"),
        ("genotype", "Genotype + config JSON", "application/json"),
        ("vocab", "Vocabulary", "text/plain"),
    ]
    with st.container(horizontal=True):
        for name, label, mime in files:
            path = exports.get(name)
            if path and Path(path).exists():
                st.download_button(
                    label,
                    lambda p=path: Path(p).read_bytes(),
                    file_name=download_name(job, path),
                    mime=mime,
                    key=f"train-dl-{name}",
                    on_click="ignore",
                    icon=":material/download:",
                )
    if exports.get("onnx"):
        ok = "matches" if exports.get("onnx_ok") else "DIFFERS from"
        st.caption(f"ONNX checked in onnxruntime: {ok} PyTorch (max difference {exports.get('onnx_max_diff', 0):.1e})")
    genotype_file = directory / "genotype.json"
    if genotype_file.exists():
        st.markdown("**Rebuild it in code**")
        st.code(rebuild_snippet(directory, json.loads(genotype_file.read_text())), language="python")
    st.caption(
        f"Files in `{directory}`. The model is in Compare as a *Trained model* with its measured "
        + ("perplexity." if job.task == "rnn" else "accuracy.")
    )
