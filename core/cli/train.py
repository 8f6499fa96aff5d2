"""`python -m core train`: final training of a genotype, headless, into the same run store.

    python -m core train preset:shrinkcnn-a --data cifar10:PATH --epochs 30
    python -m core train run:3 --task cnn              # run 3's best snapshot (run:3:7 = step 7)
    python -m core train preset:shrinkrnn --schedule paper --data ptb:PATH
    python -m core train --resume 5                    # continue job 5 after its last checkpoint
    python -m core train --list

Every training setting is a flag, generated from the config dataclasses' fields so the
CLI, the Train page and the stored config can never disagree on names or meaning.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from core.cell.genotype import Genotype
from core.cell.presets import PRESET_PREFIX, load_genotype_arg, preset_network
from core.cli.flags import add_setting_flags
from core.cli.progress import ProgressBar
from core.errors import ConfigError
from core.insight.format import fmt_duration, quality_text
from core.runner.foreground import Outcome, run_interruptibly
from core.store.jobs import JobStore
from core.store.lifecycle import RunStatus
from core.store.progress import JobProgress
from core.training.config import SCHEDULES, TASKS, field_specs, train_config
from core.training.context import JobObserver
from core.training.engine import (
    check_resumable,
    create_job,
    genotype_from_run,
    published_defaults,
    run_job,
)

RUN_PREFIX = "run:"


class _BarObserver(JobObserver):
    """Draws epochs done (fractional) of all epochs; logs epoch lines and notes above the bar."""

    def __init__(self, epochs: int, quiet: bool) -> None:
        self.bar, self.quiet = ProgressBar(epochs), quiet

    def on_log(self, job_id: int, message: str) -> None:
        if not self.quiet:
            self.bar.message(message)

    def on_progress(self, job_id: int, progress: JobProgress) -> None:
        done = progress.fraction * progress.epochs
        self.bar.update(
            done,
            f"epoch {progress.epoch}/{progress.epochs} {progress.phase}",
            force=progress.batch == 0 or progress.phase != "train",
        )

    def on_end(self, job_id: int, status: str, error: str) -> None:
        self.bar.close()


def _run_foreground(store: JobStore, job_id: int, epochs: int, quiet: bool) -> Outcome:
    obs = _BarObserver(epochs, quiet)
    return run_interruptibly(
        lambda stop: run_job(store, job_id, obs, stop), obs.bar.message, f"; resume with --resume {job_id}"
    )


def _genotype(store: JobStore, arg: str) -> tuple[Genotype, str, dict]:
    """GENOTYPE.json, preset:NAME or run:ID[:STEP] -> (genotype, source label, implied settings)."""
    if arg.startswith(RUN_PREFIX):
        parts = arg[len(RUN_PREFIX) :].split(":")
        try:
            run_id, step = int(parts[0]), (int(parts[1]) if len(parts) > 1 else None)
        except (ValueError, IndexError):
            raise ConfigError(f"bad run reference {arg!r}; use run:ID or run:ID:STEP") from None
        g, label = genotype_from_run(store, run_id, step)
        return g, label, {}
    g = load_genotype_arg(arg)
    network = preset_network(arg[len(PRESET_PREFIX) :].strip()) if arg.startswith(PRESET_PREFIX) else {}
    return g, arg, published_defaults(network, g.kind)


def cmd_train(args: argparse.Namespace) -> int:
    store = JobStore(args.store)
    if args.list:
        return _list(store, args.json)
    if args.resume is not None:
        given = [f"--{n.replace('_', '-')}" for n in _field_names() if getattr(args, n) is not None]
        if args.genotype or given:
            raise ConfigError(
                f"--resume continues a job with its stored settings; drop "
                f"{', '.join(([args.genotype] if args.genotype else []) + given)}"
            )
        job_id = args.resume
        check_resumable(store, job_id)
        epochs = store.get_job(job_id).config["epochs"]
        if not args.json:
            done = len(store.epochs(job_id))
            print(f"resuming job {job_id} after epoch {done}", file=sys.stderr)
    else:
        if not args.genotype:
            raise ConfigError("name a genotype (FILE.json, preset:NAME or run:ID[:STEP]), or --resume JOB_ID")
        genotype, source, implied = _genotype(store, args.genotype)
        task = args.task or genotype.kind
        if task != genotype.kind:
            raise ConfigError(f"--task {task} needs a {task} genotype; {args.genotype} is a {genotype.kind} cell")
        given = {n: getattr(args, n) for n in _field_names() if getattr(args, n) is not None}
        foreign = [f"--{n.replace('_', '-')}" for n in given if n not in {s.name for s in field_specs(task)}]
        if foreign:
            raise ConfigError(f"{', '.join(foreign)} do(es) not apply to {task} training")
        overrides = {**implied, **given}
        cfg = train_config(task, args.schedule or "demo", **overrides)
        job_id = create_job(store, genotype, cfg, source)
        epochs = cfg.epochs
        if not args.json:
            print(
                f"job {job_id}: {task} training of {genotype.name or genotype.hash} ({source}), schedule "
                f"{cfg.schedule}, data {cfg.data}, {cfg.epochs} epochs; store {store.path}",
                file=sys.stderr,
            )
    outcome = _run_foreground(store, job_id, epochs, args.json)
    return _report(store, job_id, args.json, outcome)


def _report(store: JobStore, job_id: int, as_json: bool, outcome: Outcome) -> int:
    job = store.get_job(job_id)
    out = {
        "job_id": job_id,
        "status": job.status,
        "task": job.task,
        "error": job.error,
        "metrics": job.metrics,
        "dir": str(store.job_dir(job_id)),
        "wall_s": round((job.finished_at or time.time()) - (job.started_at or job.created_at), 2),
    }
    if as_json:
        print(json.dumps(out))
    else:
        print(f"job {job_id}: {job.status} after {fmt_duration(out['wall_s'])}; {quality_text(job.metrics)}")
        exports = job.metrics.get("exports")
        if exports:
            print(f"exports in {exports['dir']}")
    if job.status == RunStatus.FAILED:
        print(f"error: job {job_id} failed: {job.error}", file=sys.stderr)
        return 1
    return outcome.exit_code


def _list(store: JobStore, as_json: bool) -> int:
    jobs = store.list_jobs()
    rows = [
        {
            "id": j.id,
            "task": j.task,
            "status": j.status,
            "name": j.name,
            "source": j.source,
            "epochs": len(store.epochs(j.id)),
            "of": j.config.get("epochs"),
            "data": j.config.get("data"),
            "metrics": j.metrics,
        }
        for j in jobs
    ]
    if as_json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no training jobs in {store.path}")
    for r in rows:
        print(
            f"{r['id']:>4}  {r['task']}  {r['status']:<11} {r['epochs']:>4}/{r['of']:<4} {r['name']:<18} "
            f"{quality_text(r['metrics'])}  {r['data']}"
        )
    return 0


# ----- parser --------------------------------------------------------------------------------
def _field_names() -> list[str]:
    return list(dict.fromkeys(s.name for task in TASKS for s in field_specs(task)))


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register `train` on the main CLI's subparsers."""
    t = sub.add_parser("train", help="final training of a genotype (cnn or rnn), with checkpoints and exports")
    t.add_argument("genotype", nargs="?", help="GENOTYPE.json | preset:NAME | run:ID[:STEP]")
    t.add_argument("--task", choices=TASKS, help="cnn or rnn (default: the genotype's kind)")
    schedules = sorted({name for _, name in SCHEDULES})
    t.add_argument(
        "--schedule",
        choices=schedules,
        help="named settings to start from: "
        + "; ".join(f"{task}: {', '.join(n for tk, n in SCHEDULES if tk == task)}" for task in TASKS)
        + " (default demo)",
    )
    t.add_argument("--resume", type=int, metavar="JOB_ID", help="continue a stopped, failed or killed job")
    t.add_argument("--list", action="store_true", help="list training jobs")
    add_setting_flags(t, {task: field_specs(task) for task in TASKS})
    t.add_argument("--json", action="store_true", help="end with one JSON object (job_id, status, metrics)")
    t.add_argument("--store", help="run store (SQLite); default $AUTOSHRINK_STORE or runs/autoshrink.db")
    t.set_defaults(func=cmd_train)


__all__ = ["add_train_parser", "cmd_train"]
