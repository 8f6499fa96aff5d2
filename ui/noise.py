"""The run's measured noise on the pages: one caption, and the step table's "decided by" column."""

from __future__ import annotations

import streamlit as st

from core.insight.noise import noise_text, step_verdict
from core.store.runs import RunRecord, Store


def noise_caption(run: RunRecord) -> None:
    """Say how noisy this run's proxy figures are, or that it did not measure it."""
    text = noise_text(run.noise, run.task)
    if text:
        st.caption(
            f"Measured noise (dense baseline, several seeds): {text}. Gaps smaller than this are "
            "'within noise': the proxy cannot tell those cells apart."
        )
    else:
        st.caption("This run did not measure its noise (noise seeds = 1): small gaps may be chance.")


def with_verdicts(rows: list[dict], store: Store, run: RunRecord) -> list[dict]:
    """Step-table rows plus 'decided by': quality, cost, or within noise (against the runner-up)."""
    by_step: dict[int, list[dict]] = {}
    for c in store.candidates(run.id):
        by_step.setdefault(c.step, []).append(c.to_dict())
    removed = {s.step: s.removed for s in store.steps(run.id)}
    return [
        {**r, "decided by": step_verdict(removed.get(r["step"]), by_step.get(r["step"], []), run.task, run.noise)}
        for r in rows
    ]
