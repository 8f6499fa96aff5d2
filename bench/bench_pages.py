"""How long each page takes to render with a 30-step run in the store (goal: < 1 s a page).

`python bench/bench_pages.py [--task cnn|rnn] [--repeat 3]`
`python bench/bench_pages.py --switch [--task cnn]`: page switches in a warm session (goal
< 0.5 s) and Compare's first render in a fresh server process (goal < 1 s).

The run is synthetic but made of real records: a dense N=9 cell (36 edges) shrunk one edge
per step for 30 steps with k=10 candidates each, written as StepRecord/CandidateRecord rows
through the store; only the training is skipped (figures are drawn from a seeded RNG). Each
page is rendered with AppTest: the first (cold) render and the median of the warm ones.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from core.cell.genotype import Genotype  # noqa: E402
from core.search.config import preset_config  # noqa: E402
from core.search.loop import create_run  # noqa: E402
from core.search.tasks import cnn_score, rnn_score  # noqa: E402
from core.store.lifecycle import RunStatus  # noqa: E402
from core.store.runs import CandidateRecord, StepRecord, Store  # noqa: E402

# Each page and an element it must have drawn, so a page that silently renders nothing
# cannot pass for a fast one.
PAGES = {
    "views/search.py": "markdown",
    "views/explorer.py": "markdown",
    "views/presenter.py": "plotly_chart",
    "views/predict.py": "markdown",
    "views/tradeoffs.py": "plotly_chart",
    "views/compare.py": "dataframe",
}
STEPS, K, NODES = 30, 10, 9


def _figures(task: str, g: Genotype, rng: random.Random) -> dict:
    """Plausible quality and cost for a cell of g.num_edges edges (training skipped)."""
    e = g.pruned().num_edges
    if task == "rnn":
        ppl, flops = rng.uniform(90, 160) + 2 * (36 - e) * rng.random(), e * 100 * 100
        return dict(perplexity=ppl, flops=flops, params=1_000_000 + e * 20_000, score=rnn_score(ppl, flops))
    acc, macs = min(0.99, rng.uniform(0.6, 0.8) + 0.004 * e), 2_000_000 + e * 250_000 + rng.randrange(10_000)
    return dict(accuracy=acc, macs=macs, params=20_000 + e * 2_500, score=cnn_score(acc, macs))


def synthetic_run(store: Store, task: str, seed: int = 0) -> int:
    """Write a finished 30-step run of real records; returns its id."""
    rng = random.Random(seed)
    cfg = preset_config(task, "paper", nodes=NODES, k=K, keep_fraction=0.1, max_steps=STEPS)
    run_id = create_run(store, cfg)
    store.claim(run_id, "cpu (synthetic)", "single")
    current = Genotype.dense(task, NODES, seed)
    base = _figures(task, current, rng)
    dense = CandidateRecord(step=0, idx=0, edge=None, genotype=current, status="ok", epochs=3, wall_s=1.0, **base)
    store.commit_step(
        run_id, StepRecord(step=0, edges=current.num_edges, removed=None, genotype=current, wall_s=1.0, **base), [dense]
    )
    for step in range(1, STEPS + 1):
        edges = list(current.edges)
        rng.shuffle(edges)
        cands = []
        for idx, edge in enumerate(edges[:K]):
            g = current.without_edge(edge)
            if g.num_edges == 0:
                continue
            cands.append(
                CandidateRecord(
                    step=step,
                    idx=idx,
                    edge=edge,
                    genotype=g,
                    status="ok",
                    epochs=rng.randint(2, 20),
                    stop_reason="max_epochs",
                    wall_s=round(rng.uniform(5, 30), 2),
                    **_figures(task, g, rng),
                )
            )
        # Keep the trajectory 30 steps long: choose among removals that prune nothing else.
        gentle = [c for c in cands if c.genotype.num_edges == current.num_edges - 1] or cands
        best = max(gentle, key=lambda c: (c.score, -c.genotype.num_edges))
        store.commit_step(
            run_id,
            StepRecord.from_candidate(step, best, wall_s=sum(c.wall_s for c in cands)),
            cands,
        )
        current = best.genotype
    store.finish(run_id, RunStatus.FINISHED)
    return run_id


def _app_on_synthetic_run(tmp: Path, task: str, timeout: int) -> AppTest:
    """The app, started on a store in `tmp` holding one synthetic run, with that run selected."""
    store_path = tmp / "bench.db"
    run_id = synthetic_run(Store(store_path), task)
    os.environ["AUTOSHRINK_STORE"] = str(store_path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    at.sidebar.selectbox(key="run_id").set_value(run_id).run()
    return at


def bench(task: str, repeat: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        at = _app_on_synthetic_run(Path(tmp), task, timeout=120)
        out = []
        for page in PAGES:
            at.switch_page(page)
            times = []
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t0)
                if at.exception:
                    raise SystemExit(f"{page}: {at.exception[0].value}")
                if not at.main.get(PAGES[page]):
                    raise SystemExit(f"{page}: no {PAGES[page]} was drawn")
            out.append((page, times[0], statistics.median(times[1:])))
        return out


def page_switches(task: str, rounds: int) -> list[tuple[str, float]]:
    """Moving between pages in one warm session (what a user clicking the navigation feels):
    every page visited once to warm up, then `rounds` tours; the median per target page."""
    with tempfile.TemporaryDirectory() as tmp:
        at = _app_on_synthetic_run(Path(tmp), task, timeout=180)
        times: dict[str, list[float]] = {p: [] for p in PAGES}
        for tour in range(rounds + 1):
            for page in PAGES:
                t0 = time.perf_counter()
                at.switch_page(page).run()
                if tour:
                    times[page].append(time.perf_counter() - t0)
                if at.exception:
                    raise SystemExit(f"{page}: {at.exception[0].value}")
        return [(p, statistics.median(t)) for p, t in times.items()]


FRESH = """
import os, sys, time
sys.path.insert(0, {root!r})
from streamlit.testing.v1 import AppTest
os.environ["AUTOSHRINK_STORE"] = {store!r}
at = AppTest.from_file({app!r}, default_timeout=300)
t0 = time.perf_counter(); at.run(); start = time.perf_counter() - t0
at.sidebar.selectbox(key="run_id").set_value({run_id}).run()
t0 = time.perf_counter(); at.switch_page("views/compare.py").run(); first = time.perf_counter() - t0
assert not at.exception and at.main.get("dataframe"), "compare drew no table"
direct = AppTest.from_file({app!r}, default_timeout=300)  # same process: imports already paid
direct.switch_page("views/compare.py")
t0 = time.perf_counter(); direct.run(); cold_open = time.perf_counter() - t0
print(start, first, cold_open)
"""


def compare_first_render(task: str) -> tuple[float, float, float]:
    """A fresh server process (new interpreter): the app's first page, then Compare's first
    render (costing the default pair of cells), then a new session opening Compare directly
    (its script run includes starting the page), in seconds."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "bench.db"
        run_id = synthetic_run(Store(store_path), task)
        code = FRESH.format(root=str(ROOT), store=str(store_path), app=str(ROOT / "app.py"), run_id=run_id)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        start, first, direct = map(float, out.stdout.split()[-3:])
        return start, first, direct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("cnn", "rnn", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3, help="warm renders per page (median reported)")
    ap.add_argument(
        "--switch",
        action="store_true",
        help="instead: page-switch time in one warm session, and Compare's first render in a "
        "fresh server process (goals: < 0.5 s and < 1 s)",
    )
    args = ap.parse_args()
    if args.switch:
        for task in ("cnn", "rnn") if args.task == "both" else (args.task,):
            print(
                f"{task}: {STEPS}-step run, k={K}, N={NODES}; switching to each page (median of "
                f"{args.repeat} tours, warm session)"
            )
            for page, t in page_switches(task, args.repeat):
                print(f"  -> {page:<22} {t * 1000:6.0f} ms  {'ok' if t < 0.5 else 'SLOW'}")
            start, first, direct = compare_first_render(task)
            print(
                f"  fresh server: first page {start * 1000:.0f} ms (imports torch, plotly), then Compare's "
                f"first render {first * 1000:.0f} ms  {'ok' if first < 1.0 else 'SLOW'}; a new session "
                f"opening Compare directly {direct * 1000:.0f} ms"
            )
        return
    for task in ("cnn", "rnn") if args.task == "both" else (args.task,):
        print(f"{task}: {STEPS}-step run, k={K}, N={NODES}; AppTest render time per page")
        for page, cold, warm in bench(task, args.repeat):
            flag = "ok" if warm < 1.0 else "SLOW"
            print(f"  {page:<22} cold {cold * 1000:7.0f} ms   warm {warm * 1000:6.0f} ms  {flag}")


if __name__ == "__main__":
    main()
