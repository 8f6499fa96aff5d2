"""`python -m core`: run, resume, list, show and export searches; cost summaries.

User errors (bad flag values, missing data, unknown runs) end with one line on stderr and
a non-zero exit, never a traceback. `--json` prints one machine-readable object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from core.cell.genotype import Genotype, edge_str
from core.cli.control import ControlProgress, add_control_parser, control_summary, print_summary
from core.cli.flags import add_setting_flags
from core.cli.output import write_export
from core.cli.progress import ProgressBar
from core.errors import UserError
from core.insight.format import fmt_duration
from core.runner.foreground import Outcome, run_interruptibly
from core.search.config import PRESET_NAMES, TASKS, SearchConfig, preset_config
from core.search.control import search_then_control
from core.search.loop import Observer, check_startable, create_run
from core.settings import field_specs
from core.store.lifecycle import RunStatus
from core.store.runs import CandidateRecord, StepRecord, Store, StoreError, best_of


class CLIError(UserError):
    """A bad command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise CLIError(f"{message} (see --help)")


# ----- search / resume ------------------------------------------------------------------
class _ProgressObserver(Observer):
    """Draws steps done of expected and candidate i of k; logs each committed step."""

    def __init__(self, expected_steps: int, done_steps: int, quiet: bool) -> None:
        self.expected, self.done, self.quiet = max(expected_steps, 1), done_steps, quiet
        self.bar = ProgressBar(self.expected + 1)  # +1: the step-0 baseline

    def on_log(self, run_id, message):
        if not self.quiet:
            self.bar.message(message)

    def on_candidate(self, run_id, record, i, k):
        text = f"step {record.step}: candidate {i}/{k}"
        self.bar.update(self.done + i / k, text, force=i == k)

    def on_step(self, run_id, step, candidates):
        self.done = step.step + 1
        self.bar.update(self.done, f"step {step.step} committed, {step.edges} edges")

    def on_end(self, run_id, status, error):
        """A finished search ends the bar at 100 %: pruning can take several edges in a step, so
        it often stops before the expected step count (a stopped or failed one keeps its place)."""
        if status == RunStatus.FINISHED:
            self.bar.update(self.bar.total, f"finished: {self.done} steps", force=True)
        self.bar.close()


def _run_foreground(store: Store, run_id: int, quiet: bool) -> Outcome:
    run = store.get_run(run_id)
    obs = _ProgressObserver(run.expected_steps, len(store.steps(run_id)), quiet)
    control = ControlProgress(quiet)  # the search's `control` setting trains one after it finishes
    return run_interruptibly(
        lambda stop: search_then_control(store, run_id, obs, stop, control),
        obs.bar.message,
        f"; resume with `resume {run_id}`",
    )


def _finish_report(store: Store, run_id: int, as_json: bool, outcome: Outcome) -> int:
    run, steps = store.get_run(run_id), store.steps(run_id)
    best = best_of(steps)
    out = {
        "run_id": run_id,
        "status": run.status,
        "steps": len(steps),
        "error": run.error,
        "best_step": best.step if best else None,
        "best_score": best.score if best else None,
        "best_edges": best.edges if best else None,
        "best_genotype": best.genotype.to_dict() if best else None,
        "wall_s": round((run.finished_at or time.time()) - (run.started_at or run.created_at), 2),
    }
    if as_json:
        control = control_summary(store, run_id)
        print(json.dumps({**out, "control": control and {k: v for k, v in control.items() if k != "cells"}}))
    else:
        print(
            f"run {run_id}: {run.status} after {fmt_duration(out['wall_s'])}, {len(steps)} steps"
            + (f"; best snapshot step {best.step} ({best.edges} edges, score {best.score:.4f})" if best else "")
        )
        print_summary(store, run_id)
    if run.status == RunStatus.FAILED:
        print(f"error: run {run_id} failed: {run.error}", file=sys.stderr)
        return 1
    return outcome.exit_code


def cmd_search(args: argparse.Namespace) -> int:
    overrides = {spec.name: getattr(args, spec.name) for spec in field_specs(SearchConfig)}
    cfg = preset_config(args.task, args.preset, **overrides)
    if args.dry_run:
        check_startable(cfg)  # a dry run refuses what a real start would refuse
        return _dry_run(cfg, args.json)
    store = Store(args.store)
    run_id = create_run(store, cfg)
    store.set_meta(run_id, {"command": command_line()})
    if not args.json:
        print(
            f"run {run_id}: {cfg.task} search, preset {cfg.preset}, data {cfg.data}, store {store.path}",
            file=sys.stderr,
        )
    outcome = _run_foreground(store, run_id, args.json)
    return _finish_report(store, run_id, args.json, outcome)


def _dry_run(cfg: SearchConfig, as_json: bool) -> int:
    """What the search would do: its resolved settings and starting cell; nothing is trained
    and the store is not opened (the start check has passed)."""
    start = Genotype.dense(cfg.task, cfg.nodes, cfg.seed, name=f"{cfg.task}-{cfg.preset}-seed{cfg.seed}-dense")
    if as_json:
        print(json.dumps({"config": cfg.to_dict(), "genotype": start.to_dict()}))
        return 0
    print(f"{cfg.task} search, preset {cfg.preset}: the settings it would run with")
    for spec in field_specs(SearchConfig, cfg.task):
        print(f"  {spec.flag:<26} {getattr(cfg, spec.name)!s:<14} {spec.setting.help}")
    print(f"starting cell: {start.num_edges} edges, ops {', '.join(start.ops)}")
    return 0


def command_line() -> str:
    """The command as typed (`python -m core ...`), kept with the run so a bundle says how it was made."""
    return " ".join(["python -m core", *map(shlex.quote, sys.argv[1:])])


def cmd_resume(args: argparse.Namespace) -> int:
    store = Store(args.store)
    store.check_resumable(args.run_id)
    run = store.get_run(args.run_id)
    if not args.json:
        print(f"resuming run {run.id} ({run.status}) after step {len(store.steps(run.id)) - 1}", file=sys.stderr)
    outcome = _run_foreground(store, run.id, args.json)
    return _finish_report(store, run.id, args.json, outcome)


# ----- reading the store --------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    store = Store(args.store)
    rows = []
    for run in store.list_runs():
        steps = store.steps(run.id)
        best = best_of(steps)
        rows.append(
            {
                "id": run.id,
                "task": run.task,
                "preset": run.config.get("preset"),
                "data": run.config.get("data"),
                "status": run.status,
                "steps": len(steps),
                "best_score": best.score if best else None,
                "best_edges": best.edges if best else None,
                "device": run.device,
                "age_s": round(time.time() - run.created_at),
            }
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no runs in {store.path}")
    for r in rows:
        best = "-" if r["best_score"] is None else f"{r['best_score']:.4f} ({r['best_edges']} edges)"
        print(
            f"{r['id']:>4}  {r['task']}  {r['preset'] or '-':<6} {r['status']:<11} {r['steps']:>3} steps"
            f"  best {best:<22} {r['data']}  {fmt_duration(r['age_s'])} ago"
        )
    return 0


def show_dict(store: Store, run_id: int) -> dict:
    """The run with all its steps and candidates, as `show --json` prints it."""
    run = store.get_run(run_id)
    cands: dict[int, list[CandidateRecord]] = {}
    for c in store.candidates(run_id):
        cands.setdefault(c.step, []).append(c)
    best = best_of(steps := store.steps(run_id))
    return {
        "run": {**run.to_dict(), "best_step": best.step if best else None},
        "steps": [
            {
                **s.to_dict(),
                "baseline": s.step == 0,
                "candidates": [{**c.to_dict(), "history": list(c.history)} for c in cands.get(s.step, [])],
            }
            for s in steps
        ],
        "control": control_summary(store, run_id),
    }


def cmd_show(args: argparse.Namespace) -> int:
    store = Store(args.store)
    data = show_dict(store, args.run_id)
    if args.json:
        print(json.dumps(data))
        return 0
    run = data["run"]
    print(
        f"run {run['id']} [{run['status']}] {run['task']} preset {run['config'].get('preset')}, "
        f"data {run['config'].get('data')}, device {run['device'] or '-'}, evaluator {run['evaluator'] or '-'}, "
        f"precision {run['config'].get('precision', 'fp32')}"
    )
    if run["error"]:
        print(f"  error: {run['error']}")
    for s in data["steps"]:
        mark = "*" if s["step"] == run["best_step"] else " "
        quality = _quality(s)
        score = "-" if s["score"] is None else f"{s['score']:.4f}"
        print(
            f" {mark}step {s['step']:>3}  removed {edge_str(s['removed']):>5}  edges {s['edges']:>3}  "
            f"score {score}  {quality}  ({len(s['candidates'])} candidates, {s['wall_s']:.1f}s)"
            + ("  baseline (dense DAG, never the result)" if s["step"] == 0 else "")
        )
    print_summary(store, args.run_id)
    return 0


def _quality(row: dict) -> str:
    if row.get("perplexity") is not None:
        return f"ppl {row['perplexity']:.1f}  flops {row['flops']:,}"
    if row.get("accuracy") is not None:
        return f"acc {row['accuracy']:.3f}  macs {row['macs']:,}"
    return ""


def cmd_export(args: argparse.Namespace) -> int:
    store = Store(args.store)
    store.get_run(args.run_id)  # an unknown run says so
    steps: list[StepRecord] = store.steps(args.run_id)
    if args.step is None:
        chosen = best_of(steps)
        if chosen is None:
            raise StoreError(f"run {args.run_id} has no scored step after the dense baseline yet")
    else:
        chosen = next((s for s in steps if s.step == args.step), None)
        if chosen is None:
            raise StoreError(f"run {args.run_id} has no step {args.step} (steps 0..{len(steps) - 1})")
    g = chosen.genotype
    text = Genotype(g.kind, g.ops, g.edges, name=f"run{args.run_id}-step{chosen.step}").to_json()
    if args.out:
        write_export(Path(args.out), text, store.path, args.force)
        print(f"wrote step {chosen.step} of run {args.run_id} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_export_run(args: argparse.Namespace) -> int:
    from core.search.bundle import write_bundle

    store = Store(args.store)
    size = write_bundle(store, args.run_id, args.out, command=args.command, note=args.note)
    print(f"wrote run {args.run_id} to {args.out} ({size:,} bytes)", file=sys.stderr)
    return 0


def cmd_import_run(args: argparse.Namespace) -> int:
    from core.search.bundle import import_file

    store = Store(args.store)
    run_id = import_file(store, args.file)
    run = store.get_run(run_id)
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": run_id,
                    "task": run.task,
                    "status": run.status,
                    "store": str(store.path),
                    "steps": len(store.steps(run_id)),
                    "source": run.meta.get("bundle", {}),
                }
            )
        )
    else:
        print(f"imported {args.file} as run {run_id} ({run.task}, {run.status}) into {store.path}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from core.insight.summary import summarize

    out = summarize(
        args.genotype,
        network=args.network,
        input_size=args.input_size,
        classes=args.classes,
        activation=args.activation,
        emb=args.emb,
        hidden=args.hidden,
        vocab=args.vocab,
        with_table=not args.json,
    )
    if args.json:
        print(json.dumps({k: v for k, v in out.items() if k != "table"}))
    else:
        print(out.pop("table", ""))
        for k, v in out.items():
            print(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}")
    return 0


# ----- parser --------------------------------------------------------------------------
def _command(
    sub: argparse._SubParsersAction,
    name: str,
    help: str,
    func,
    *,
    run_id: bool = False,
    as_json: bool = True,
    store: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand with the arguments most share: a run id, --json and --store."""
    p = sub.add_parser(name, help=help)
    if run_id:
        p.add_argument("run_id", type=int)
    if as_json:
        p.add_argument("--json", action="store_true", help="end with one JSON object")
    if store:
        p.add_argument("--store", help="run store (SQLite); default $AUTOSHRINK_STORE or runs/autoshrink.db")
    p.set_defaults(func=func)
    return p


def _search_parser(sub: argparse._SubParsersAction) -> None:
    s = _command(sub, "search", "run a shrink search (cnn or rnn)", cmd_search)
    s.add_argument("task", choices=TASKS)
    s.add_argument("--preset", choices=PRESET_NAMES, default="demo")
    add_setting_flags(s, {"search": field_specs(SearchConfig)})
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="run the start check, print the settings and the starting cell, then exit",
    )


def _run_parsers(sub: argparse._SubParsersAction) -> None:
    """The commands over recorded runs: resume, list, show, export, bundles."""
    _command(sub, "resume", "resume a stopped, failed or killed run from its last step", cmd_resume, run_id=True)
    _command(sub, "runs", "list runs", cmd_runs)
    _command(sub, "show", "a run's steps and candidates", cmd_show, run_id=True)
    ex = _command(
        sub, "export", "a step's genotype as JSON (default: the best snapshot)", cmd_export, run_id=True, as_json=False
    )
    ex.add_argument("--step", type=int)
    ex.add_argument("--out")
    ex.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    er = _command(
        sub,
        "export-run",
        "a whole run (settings, steps, candidates, noise) as one bundle file",
        cmd_export_run,
        run_id=True,
        as_json=False,
    )
    er.add_argument("--out", required=True, help="FILE.json or FILE.json.gz (gzip)")
    er.add_argument("--command", help="how the run was made, when the store did not record it")
    er.add_argument("--note", help="a sentence on how it was made (machine, load, why it stopped)")
    ir = _command(sub, "import-run", "add a run bundle to the store under a new run id", cmd_import_run)
    ir.add_argument("file")


def _summary_parser(sub: argparse._SubParsersAction) -> None:
    sm = _command(sub, "summary", "params and MACs (cnn) or FLOPs (rnn) of a genotype", cmd_summary, store=False)
    sm.add_argument("genotype", help="GENOTYPE.json or preset:NAME")
    sm.add_argument(
        "--network",
        choices=("proxy", "cifar", "imagenet"),
        help="cnn network around the cell (default: the preset's, else proxy)",
    )
    for flag in ("--input-size", "--classes", "--emb", "--hidden", "--vocab"):
        sm.add_argument(flag, type=int)
    sm.add_argument("--activation", choices=("relu", "swish"))


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m core", description="AutoShrink Studio: topology-aware NAS by edge shrinking")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _search_parser(sub)
    _run_parsers(sub)
    _summary_parser(sub)
    add_control_parser(sub)
    from core.cli.train import add_train_parser  # final training lives in its own module

    add_train_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
