"""The demo searches' teaching figures: wall time, per-step spread against the measured noise,
the best cell, and (RNN) the unigram perplexity the candidates must beat.

    python bench/demo_figures.py rnn                 # the rnn demo preset as shipped
    python bench/demo_figures.py cnn --set epochs=2  # with a setting changed
    python bench/demo_figures.py rnn --store runs/autoshrink.db --run 3  # a finished run, e.g. a recording

Wall time depends on the machine and its load; it is printed, never asserted, with the load
average and the CPU seconds (this process and its pool workers), which a loaded machine inflates
far less than wall time. The last lines say whether the demo still teaches what the README says:
the RNN's candidate spread exceeds twice the measured noise at half of its steps or more, and the
CNN's best snapshot keeps 3 or more edges (issue 21).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.insight.control import control_groups, control_sentence, score_noise  # noqa: E402
from core.insight.noise import step_verdict  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.control import run_control  # noqa: E402
from core.search.loop import create_run, run_search  # noqa: E402
from core.store.controls import control_cells  # noqa: E402
from core.store.runs import Store, best_of  # noqa: E402


def unigram_perplexity(cfg) -> float:
    """exp(cross-entropy) of the validation tokens under the training unigram distribution."""
    from core.data.corpus import load_corpus

    corpus = load_corpus(cfg.data_spec, max_vocab=cfg.max_vocab or None)
    counts = Counter(corpus.train.tolist())
    total = sum(counts.values())
    vocab = corpus.vocab_size
    nll = [-math.log((counts.get(t, 0) + 1) / (total + vocab)) for t in corpus.valid.tolist()]
    return math.exp(sum(nll) / len(nll))


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=("cnn", "rnn"))
    ap.add_argument("--set", action="append", default=[], help="setting=value on top of the demo preset")
    ap.add_argument("--store", type=Path, help="with --run: the figures of a run already in this store")
    ap.add_argument("--run", type=int, help="a finished run (a recording) instead of a new demo search")
    args = ap.parse_args()
    if args.run is not None:
        store = Store(args.store)
        print(step_figures(store, args.run))
        return
    overrides = dict(kv.split("=", 1) for kv in args.set)
    cfg = preset_config(args.task, "demo", **{k: _value(v) for k, v in overrides.items()})
    store = Store(Path(tempfile.mkdtemp()) / "runs.db")
    run_id = create_run(store, cfg)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    status = run_search(store, run_id)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    print(
        f"{args.task} demo {overrides or ''}: {status} in {wall:.1f} s wall, {cpu:.1f} CPU s, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    if args.task == "rnn":
        print(f"unigram perplexity (validation, add-one): {unigram_perplexity(cfg):.1f}")
    print(step_figures(store, run_id))
    if cfg.control:
        control_figures(store, run_id, cfg.control, wall)


def step_figures(store: Store, run_id: int) -> str:
    """The noise, each step's candidate spread against it, the best snapshot and the verdict."""
    run = store.get_run(run_id)
    task = run.task
    metric = "perplexity" if task == "rnn" else "accuracy"
    std = run.noise.get("std")
    lines = [
        f"noise {metric} std {std if std is None else round(std, 4)} over {run.noise.get('seeds')} seeds, "
        f"values {[round(v, 4) for v in run.noise.get('values', [])]}"
    ]
    wider = 0
    steps = store.steps(run_id)
    for s in steps[1:]:
        cands = [c for c in store.candidates(run_id, s.step) if c.status == "ok"]
        values = [getattr(c, metric) for c in cands]
        spread = max(values) - min(values) if values else float("nan")
        ratio = spread / std if std else float("nan")
        wider += ratio > 2
        verdict = step_verdict(s.removed, [c.to_dict() for c in store.candidates(run_id, s.step)], task, run.noise)
        lines.append(
            f"  step {s.step}: {len(cands)} candidates, {metric} {min(values):.4f}..{max(values):.4f}, "
            f"spread {spread:.4f} = {ratio:.1f} x noise; {s.edges} edges left; decided by {verdict}"
        )
    best = best_of(steps)
    lines.append(f"steps with spread > 2 x noise: {wider} of {len(steps) - 1}")
    lines.append(
        f"best snapshot: step {best.step}, {best.edges} edges {list(map(list, best.genotype.edges))}, "
        f"{metric} {getattr(best, metric):.4f}, score {best.score:.4f}"
    )
    lines.append(teaching_verdict(task, wider, len(steps) - 1, best.edges))
    return "\n".join(lines)


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended (the
    evaluator pool's workers end with the search)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def teaching_verdict(task: str, wider: int, steps: int, best_edges: int) -> str:
    """Whether the demo still shows what the README says it shows (issue 21's rule)."""
    if task == "rnn":
        ok = steps > 0 and 2 * wider >= steps
        return f"teaches: {'yes' if ok else 'NO'} (spread > 2 x noise at {wider} of {steps} steps; half or more wanted)"
    ok = best_edges >= 3
    return f"teaches: {'yes' if ok else 'NO'} (best snapshot keeps {best_edges} edges; 3 or more wanted)"


def control_figures(store: Store, run_id: int, samples: int, search_wall: float) -> None:
    """The random control the preset asks for: the wall time it adds, and per count the chosen
    cell against the random ones (core.insight.control's sentence)."""
    t0 = time.perf_counter()
    status = run_control(store, run_id, samples)
    wall = time.perf_counter() - t0
    run = store.get_run(run_id)
    print(  # no CPU seconds: run_control leaves its pool's workers to the garbage collector, unreaped
        f"control r={samples}: {status} in {wall:.1f} s wall (+{100 * wall / search_wall:.0f}% on the "
        f"search's {search_wall:.1f} s); noise score std {score_noise(run.noise, run.task)}"
    )
    cells = control_cells(store, run_id)
    for group in control_groups(store.steps(run_id), cells, run.task, run.noise):
        scores = sorted(round(c.score, 4) for c in cells if c.target == group["target"] and c.score is not None)
        print(f"  {group['target']} edges: {control_sentence(group)} random scores {scores}")


if __name__ == "__main__":
    main()
