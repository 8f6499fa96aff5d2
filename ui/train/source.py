"""Compare's "Trained model" source: a finished training job's genotype with its measured quality.

A trained model carries what no search can: its accuracy (CNN) or perplexity (RNN) after
final training, so Compare shows that instead of a proxy figure, and says where it was
measured.
"""

from __future__ import annotations

import streamlit as st

from core.insight.compare import CompareItem, lm_vocab
from core.store.lifecycle import RunStatus
from core.store.runs import RunRecord, Store
from ui.train.job_store import job_store_at


def pick_trained(key: str, store: Store, default: RunRecord | None) -> CompareItem | None:
    jobs = [j for j in job_store_at(str(store.path.resolve())).list_jobs() if j.status == RunStatus.FINISHED]
    if not jobs:
        st.caption("No finished training job yet: train one on the Train page.")
        return None
    by_id = {j.id: j for j in jobs}
    job_id = st.selectbox(
        "Training job",
        list(by_id),
        key=f"{key}-job",
        format_func=lambda i: f"#{i} {by_id[i].task} {by_id[i].name} · {by_id[i].config.get('data')}",
    )
    job, m = by_id[job_id], by_id[job_id].metrics
    label = f"job{job.id}-{job.name}"
    note = f"job {job.id} final training ({m.get('data', job.config.get('data'))}, {m.get('epochs')} epochs)"
    if job.task == "rnn":
        return CompareItem(
            label=label,
            genotype=job.genotype,
            source=f"job {job.id}",
            quality=m.get("perplexity"),
            quality_note=note,
            emb=int(job.config["emb"]),
            hidden=int(job.config["hidden"]),
            vocab=lm_vocab(job.config, recorded=m.get("vocab")),
        )
    return CompareItem(
        label=label, genotype=job.genotype, source=f"job {job.id}", quality=m.get("accuracy"), quality_note=note
    )
