"""Recorded runs written straight into a store, without training: real StepRecord and
CandidateRecord rows with made-up figures, so page tests can step, follow and predict in
milliseconds. A run can be left "running" (claimed by this live process) and grown one
step at a time, which is what a live search looks like to every page.
"""
from __future__ import annotations

import random

from core.cell.genotype import Genotype
from core.search.config import SearchConfig, preset_config
from core.search.loop import create_run, step_candidates
from core.search.tasks import cnn_score
from core.store.runs import FINISHED, CandidateRecord, StepRecord, Store


def _figures(g: Genotype, rng: random.Random) -> dict:
    e = g.pruned().num_edges
    acc, macs = min(0.99, rng.uniform(0.6, 0.8) + 0.005 * e), 1_000_000 + e * 200_000 + rng.randrange(50_000)
    return dict(accuracy=acc, macs=macs, params=10_000 + e * 2_000, score=cnn_score(acc, macs))


def fake_run(store: Store, nodes: int = 5, steps: int = 3, k: int = 3, live: bool = False, seed: int = 0) -> int:
    """A CNN run with `steps` removals after the dense step 0; finished unless `live`."""
    cfg = preset_config("cnn", "demo", nodes=nodes, k=k, keep_fraction=0.0, seed=seed, threads=1)
    run_id = create_run(store, cfg)
    store.claim(run_id, "cpu (fake)", "single")
    dense = Genotype.dense("cnn", nodes, cfg.seed)
    base = _figures(dense, random.Random(seed))
    store.commit_step(run_id, StepRecord(step=0, edges=dense.num_edges, removed=None, genotype=dense, **base),
                      [CandidateRecord(step=0, idx=0, edge=None, genotype=dense, status="ok", wall_s=1.0, **base)])
    for _ in range(steps):
        add_step(store, run_id)
    if not live:
        store.finish(run_id, FINISHED)
    return run_id


def add_step(store: Store, run_id: int) -> StepRecord:
    """Commit the run's next step: the seeded candidates the real loop would try, the best
    score removed (removals that prune nothing else win ties, so every step takes one edge)."""
    run, done = store.get_run(run_id), store.steps(run_id)
    cfg = SearchConfig.from_dict(run.config)
    n, current = len(done), done[-1].genotype
    rng = random.Random(1000 * run_id + n)
    cands = []
    for idx, edge in enumerate(step_candidates(current, cfg.k, cfg.seed, n)):
        g = current.without_edge(edge)
        cands.append(CandidateRecord(step=n, idx=idx, edge=edge, genotype=g, status="ok", epochs=2,
                                     wall_s=1.0, **_figures(g, rng)))
    best = max(cands, key=lambda c: (c.genotype.num_edges == current.num_edges - 1, c.score))
    step = StepRecord(step=n, edges=best.genotype.num_edges, removed=best.edge, genotype=best.genotype,
                      score=best.score, accuracy=best.accuracy, macs=best.macs, params=best.params, wall_s=3.0)
    store.commit_step(run_id, step, cands)
    return step
