"""Recorded runs written straight into a store, without training: real StepRecord and
CandidateRecord rows with made-up figures, so page tests can step, follow and predict in
milliseconds. A run can be left "running" (claimed by this live process) and grown one
step at a time, which is what a live search looks like to every page. Step 0 can carry
several noise seeds (and the run its measured noise), and a run can be given a finished
random control of made-up cells.
"""

from __future__ import annotations

import random

from core.cell.genotype import Genotype
from core.search.config import SearchConfig, preset_config
from core.search.control import CONTROL_STEP, plan_targets, random_cells, to_cell
from core.search.loop import create_run, step_candidates
from core.search.noise import measure_noise
from core.search.tasks import cnn_score, rnn_score
from core.store.controls import claim_control, commit_control_cell, finish_control
from core.store.lifecycle import RunStatus
from core.store.runs import CandidateRecord, StepRecord, Store


def _figures(g: Genotype, rng: random.Random) -> dict:
    e = g.pruned().num_edges
    if g.kind == "rnn":  # perplexity (lower is better) and cell FLOPs, as the RNN proxy records them
        ppl, flops = rng.uniform(180.0, 260.0) - 2 * e, 1_000_000 + e * 65_536 + rng.randrange(10_000)
        return dict(perplexity=ppl, flops=flops, params=20_000 + e * 4_096, score=rnn_score(ppl, flops))
    acc, macs = min(0.99, rng.uniform(0.6, 0.8) + 0.005 * e), 1_000_000 + e * 200_000 + rng.randrange(50_000)
    return dict(accuracy=acc, macs=macs, params=10_000 + e * 2_000, score=cnn_score(acc, macs))


def _history(g: Genotype, figures: dict) -> tuple:
    """Two recorded epochs ending at the candidate's figures (Explorer's training curves read them)."""
    if g.kind == "rnn":
        ppl = figures["perplexity"]
        return tuple(
            {
                "epoch": ep,
                "train_loss": 6.0 - ep / 2,
                "val_loss": 6.1 - ep / 2,
                "train_ppl": ppl * (3 - ep),
                "val_ppl": ppl * (3 - ep) * 1.05,
                "lr": 20.0,
            }
            for ep in (1, 2)
        )
    acc = figures["accuracy"]
    return tuple(
        {
            "epoch": ep,
            "train_loss": 2.0 - ep / 2,
            "val_loss": 2.1 - ep / 2,
            "train_acc": acc * ep / 2,
            "val_acc": acc * ep / 2 - 0.01,
            "lr": 0.025,
        }
        for ep in (1, 2)
    )


def _candidate(step: int, idx: int, edge, g: Genotype, figures: dict) -> CandidateRecord:
    """A trained candidate: two epochs, one second, ending at `figures`."""
    return CandidateRecord(
        step=step,
        idx=idx,
        edge=edge,
        genotype=g,
        status="ok",
        wall_s=1.0,
        epochs=2,
        history=_history(g, figures),
        **figures,
    )


def fake_run(
    store: Store,
    nodes: int = 5,
    steps: int = 3,
    k: int = 3,
    live: bool = False,
    seed: int = 0,
    task: str = "cnn",
    keep_fraction: float = 0.0,
    noise_seeds: int = 1,
) -> int:
    """A CNN (or RNN) run with `steps` removals after the dense step 0; finished unless `live`.
    Step 0 trains the dense cell `noise_seeds` times, and the run records the noise they show."""
    cfg = preset_config(task, "demo", nodes=nodes, k=k, keep_fraction=keep_fraction, seed=seed, threads=1,
                        noise_seeds=noise_seeds)  # fmt: skip
    run_id = create_run(store, cfg)
    store.claim(run_id, "cpu (fake)", "single")
    dense = Genotype.dense(task, nodes, cfg.seed)
    rng = random.Random(seed)
    baselines = [_candidate(0, i, None, dense, _figures(dense, rng)) for i in range(noise_seeds)]
    store.commit_step(run_id, StepRecord.from_candidate(0, baselines[0], wall_s=0.0), baselines)
    store.set_noise(run_id, measure_noise(task, baselines))
    for _ in range(steps):
        add_step(store, run_id)
    if not live:
        store.finish(run_id, RunStatus.FINISHED)
    return run_id


def fake_control(store: Store, run_id: int, samples: int, edges: list[int] | None = None) -> None:
    """A finished random control of `run_id`: `samples` random cells at each edge count (the
    run's default counts unless `edges`), the cells the real control would draw, made-up figures."""
    run, steps = store.get_run(run_id), store.steps(run_id)
    cfg = SearchConfig.from_dict(run.config)
    targets = plan_targets(steps, edges)
    claim_control(store, run_id, samples, targets, "cpu (fake)")
    rng = random.Random(run_id)
    for target in targets:
        for sample, g in enumerate(random_cells(steps[0].genotype, cfg.seed, target, samples)):
            rec = _candidate(CONTROL_STEP, sample, None, g, _figures(g, rng))
            commit_control_cell(store, run_id, to_cell(rec, target))
    finish_control(store, run_id, RunStatus.FINISHED, "", 1.0)


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
        figures = _figures(g, rng)
        cands.append(_candidate(n, idx, edge, g, figures))
    best = max(cands, key=lambda c: (c.genotype.num_edges == current.num_edges - 1, c.score))
    step = StepRecord.from_candidate(n, best, wall_s=3.0)
    store.commit_step(run_id, step, cands)
    return step
