"""Run bundles: one JSON file (optionally gzip) that holds a whole search run, records only.

A bundle carries the settings, every step, every candidate with its per-epoch history, the
measured noise, the device, evaluator and timings, and how the run was made (command, wall
time). Importing one adds the run to any store under a new id and overwrites nothing.

A bundle comes from outside, so reading one trusts nothing: the size is capped before and
after decompression, the format version must match, every record is type-checked, every
number must lie in the range a search can produce (core.search.bundle_ranges), and the
steps must replay (each step's genotype is its parent without the removed edge, each step's
choice is one of its trained candidates). Any failure is one line and the store is left
untouched: the run, its steps and candidates are inserted in one transaction.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from core import __version__
from core.cell.genotype import Genotype
from core.errors import UserError
from core.result import CandidateStatus
from core.search import bundle_ranges as ranges
from core.search.bundle_control import check_control, control_fields
from core.search.config import SearchConfig
from core.store.controls import control_inserter
from core.store.lifecycle import RunStatus
from core.store.runs import CandidateRecord, RunRecord, StepRecord, Store

FORMAT, VERSION = "autoshrink-run-bundle", 2
READS = (1, 2)  # version 1: no random control; it still imports
MAX_FILE_BYTES = 8 * 2**20  # a bundle on disk (gzip or not); recorded runs are ~100 kB
MAX_JSON_BYTES = 64 * 2**20  # after decompression: a gzip bomb stops here
MAX_HISTORY = 10000  # epochs per candidate
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "runs"


class BundleError(UserError, ValueError):
    """A file that is not a bundle this version can import; the message is one line."""


@dataclass(frozen=True)
class Bundle:
    """A checked bundle, ready to insert."""

    meta: dict
    run: dict
    steps: list[StepRecord]
    candidates: list[CandidateRecord]
    sha256: str
    control: dict | None = None  # the random control's row fields (samples, targets, ...), if any
    control_cells: tuple = ()


# ----- export ------------------------------------------------------------------------------
def wall_seconds(run: RunRecord, steps: list[StepRecord]) -> float | None:
    """Start to end of a run (including resumes' gaps); for a run still going, start to its last
    committed step (what the bundle holds); None if it never started."""
    end = run.finished_at or (steps[-1].created_at if steps else None)
    if run.started_at is None or end is None:
        return None
    return round(end - run.started_at, 1)


def run_bundle(store: Store, run_id: int, command: str | None = None, note: str | None = None) -> dict:
    """The bundle of `run_id` as a JSON-ready dict; `command` overrides the recorded command line,
    `note` says in words how it was made (machine, load, why it stopped)."""
    run, steps = store.get_run(run_id), store.steps(run_id)
    status = RunStatus.STOPPED if run.status.live else run.status
    meta = {
        "exported_at": time.time(),
        "exported_by": f"AutoShrink Studio {__version__}",
        "source_run_id": run.id,
        "command": command or run.meta.get("command", ""),
        "device": run.device,
        "evaluator": run.evaluator,
        "wall_s": wall_seconds(run, steps),
        "status": status,
        "made": note or run.meta.get("made", ""),
        "steps": len(steps),
    }
    run_fields = {
        "task": run.task,
        "status": status,
        "config": run.config,
        "device": run.device,
        "evaluator": run.evaluator,
        "expected_steps": run.expected_steps,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "noise": run.noise,
        "meta": {k: v for k, v in run.meta.items() if k != "sample"},
    }
    cands = [
        {**c.to_dict(), "genotype": c.genotype.to_dict(), "history": list(c.history)}
        for c in store.candidates(run_id)
        if c.step < len(steps)
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta,
        "run": run_fields,
        "steps": [{**s.to_dict(), "created_at": s.created_at} for s in steps],
        "candidates": cands,
        "control": control_fields(store, run_id),
    }


def bundle_bytes(
    store: Store, run_id: int, compress: bool = True, command: str | None = None, note: str | None = None
) -> bytes:
    """The bundle as file content: gzip'd JSON (mtime 0) or plain JSON."""
    text = json.dumps(run_bundle(store, run_id, command, note), separators=(",", ":")).encode()
    return gzip.compress(text, mtime=0) if compress else text


def write_bundle(
    store: Store, run_id: int, path: str | Path, command: str | None = None, note: str | None = None
) -> int:
    """Write the bundle to `path` (gzip when it ends in .gz); returns its size in bytes."""
    data = bundle_bytes(store, run_id, compress=str(path).endswith(".gz"), command=command, note=note)
    Path(path).write_bytes(data)
    return len(data)


# ----- import ------------------------------------------------------------------------------
def read_bundle(data: bytes, name: str = "bundle") -> Bundle:
    """Check `data` (a bundle file's bytes) completely; raises BundleError with one line."""
    if len(data) > MAX_FILE_BYTES:
        raise BundleError(f"{name}: {len(data):,} bytes is over the {MAX_FILE_BYTES // 2**20} MiB bundle limit")
    text = _decompress(data, name)
    try:
        doc = json.loads(text, parse_constant=float)  # NaN/Infinity: refused by the range checks
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{name}: not a run bundle (JSON unreadable: {exc}); truncated?") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise BundleError(f"{name}: not a run bundle ({str(exc).split(':')[0]})") from None
    except RecursionError:  # nesting deep enough to exhaust the parser's stack: no bundle has it
        raise BundleError(f"{name}: not a run bundle (JSON nested too deeply)") from None
    try:
        return _check(doc, hashlib.sha256(text).hexdigest())
    except BundleError as exc:
        raise BundleError(f"{name}: {exc}") from None
    except UserError as exc:  # a bad genotype or setting inside the bundle
        raise BundleError(f"{name}: inconsistent bundle: {str(exc).splitlines()[0]}") from None


def import_bundle(store: Store, data: bytes, name: str = "bundle", extra_meta: dict | None = None) -> int:
    """Add the bundle's run to `store` under a new id (nothing else changes); returns the id."""
    b = read_bundle(data, name)
    meta = {
        **b.run.get("meta", {}),
        "imported_from": name,
        "bundle": b.meta,
        "bundle_sha256": b.sha256,
        **(extra_meta or {}),
    }
    return store.insert_run(
        {**b.run, "meta": meta}, b.steps, b.candidates, also=control_inserter(b.control, list(b.control_cells))
    )


def import_file(store: Store, path: str | Path) -> int:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BundleError(f"{p.name}: {size:,} bytes is over the {MAX_FILE_BYTES // 2**20} MiB bundle limit")
        data = p.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc.strerror or exc}") from None
    return import_bundle(store, data, p.name)


def import_samples(store: Store, folder: Path = SAMPLE_DIR) -> list[int]:
    """Import the recorded runs shipped in assets/runs/ that `store` lacks (matched by content
    hash), marked as samples; returns the new ids. Safe to call on every start."""
    have = {r.meta.get("sample") for r in store.list_runs() if r.meta.get("sample")}
    new = []
    for path in sorted(folder.glob("*.json*")) if folder.is_dir() else []:
        data = path.read_bytes()
        sha = hashlib.sha256(_decompress(data, path.name)).hexdigest()
        if sha not in have:
            new.append(import_bundle(store, data, path.name, extra_meta={"sample": sha}))
    return new


def _decompress(data: bytes, name: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            text = f.read(MAX_JSON_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"{name}: damaged or truncated gzip ({exc})") from None
    if len(text) > MAX_JSON_BYTES:
        raise BundleError(f"{name}: decompresses to over {MAX_JSON_BYTES // 2**20} MiB; refused")
    return text


# ----- the checks ----------------------------------------------------------------------------
def _need(ok: bool, message: str) -> None:
    if not ok:
        raise BundleError(message)


def _num(d: dict, key: str, kind=float, optional: bool = True, where: str = ""):
    v = d.get(key)
    if v is None:
        _need(optional, f"inconsistent bundle: {where}{key} is missing")
        return None
    ok = isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and math.isfinite(v)
    _need(
        ok and (kind is float or isinstance(v, int) or v.is_integer()),
        f"inconsistent bundle: {where}{key} is not a number",
    )
    return kind(v)


def _text(d: dict, key: str, where: str = "") -> str:
    v = d.get(key, "")
    _need(isinstance(v, str), f"inconsistent bundle: {where}{key} is not text")
    return v


def _edge(v, where: str) -> tuple[int, int] | None:
    if v is None:
        return None
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
    _need(ok, f"inconsistent bundle: {where}edge is not a pair of node numbers")
    return int(v[0]), int(v[1])


def _dict(v, what: str) -> dict:
    _need(isinstance(v, dict), f"inconsistent bundle: {what} is not an object")
    return v


def _check(doc, sha: str) -> Bundle:
    _need(isinstance(doc, dict) and doc.get("format") == FORMAT, "not a run bundle (no autoshrink-run-bundle mark)")
    _need(
        doc.get("version") in READS,
        f"bundle format version {doc.get('version')!r}; this AutoShrink Studio reads versions 1 to {VERSION}",
    )
    raw_steps, raw_cands = doc.get("steps"), doc.get("candidates")
    _need(isinstance(raw_steps, list) and raw_steps, "inconsistent bundle: it has no steps")
    _need(isinstance(raw_cands, list), "inconsistent bundle: candidates is not a list")
    ranges.all_finite([v for k, v in doc.items() if k not in ("candidates", "control")])  # histories: per key
    ranges.all_finite([{k: v for k, v in c.items() if k != "history"} for c in raw_cands if isinstance(c, dict)])
    run = _check_run(_dict(doc.get("run"), "run"))
    cfg = SearchConfig.from_dict(run["config"])
    meta = _dict(doc.get("meta", {}), "meta")
    ranges.run_numbers(run, cfg, run["noise"])
    ranges.bundle_meta(meta)
    steps = [_step(_dict(s, "a step"), i) for i, s in enumerate(raw_steps)]
    cands = [_candidate(_dict(c, "a candidate")) for c in raw_cands]
    for s in steps:
        ranges.step_numbers(s, f"step {s.step}: ")
    for c in cands:
        ranges.candidate_numbers(c, cfg, f"candidate {c.step}/{c.idx}: ")
    _replay(cfg, steps, cands)
    control, cells = (
        (None, [])
        if doc["version"] < 2 or doc.get("control") is None
        else check_control(_dict(doc["control"], "control"), cfg, steps[0].genotype)
    )
    for cell in cells:
        ranges.candidate_numbers(
            SimpleNamespace(**{**cell.__dict__, "idx": 0}), cfg, f"control cell {cell.target}/{cell.sample}: "
        )
    return Bundle(
        meta=meta, run=run, steps=steps, candidates=cands, sha256=sha, control=control, control_cells=tuple(cells)
    )


MEASURE_TYPES = {"accuracy": float, "perplexity": float, "macs": int, "flops": int, "params": int}


def _check_run(r: dict) -> dict:
    _need(r.get("task") in ("cnn", "rnn"), f"inconsistent bundle: unknown task {r.get('task')!r}")
    _need(
        r.get("status") in (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED),
        f"inconsistent bundle: run status {r.get('status')!r}",
    )
    config = _dict(r.get("config"), "run config")
    _need(config.get("task") == r["task"], "inconsistent bundle: the settings are for another task")
    ranges.config_types(config)
    out = {
        "task": r["task"],
        "status": r["status"],
        "config": config,
        "device": _text(r, "device", "run "),
        "evaluator": _text(r, "evaluator", "run "),
        "expected_steps": _num(r, "expected_steps", int, False, "run "),
        "created_at": _num(r, "created_at", float, False, "run "),
        "started_at": _num(r, "started_at", float, True, "run "),
        "finished_at": _num(r, "finished_at", float, True, "run "),
        "error": _text(r, "error", "run "),
        "noise": _dict(r.get("noise") or {}, "run noise"),
        "meta": _dict(r.get("meta") or {}, "run meta"),
    }
    noise = out["noise"]
    if noise:
        _need(
            noise.get("metric") == ("accuracy" if r["task"] == "cnn" else "perplexity"),
            "inconsistent bundle: the noise is measured on the wrong metric",
        )
        _num(noise, "std", float, True, "noise ")
        _num(noise, "seeds", int, False, "noise ")
    return out


def _step(s: dict, position: int) -> StepRecord:
    where = f"step {position}: "
    step = _num(s, "step", int, False, where)
    _need(step == position, f"inconsistent bundle: steps are not numbered 0..{position} in order")
    return StepRecord(
        step=step,
        edges=_num(s, "edges", int, False, where),
        removed=_edge(s.get("removed"), where),
        genotype=Genotype.from_dict(_dict(s.get("genotype"), f"{where}genotype")),
        score=_num(s, "score", float, True, where),
        **_measures(s, where),
        wall_s=_num(s, "wall_s", float, False, where),
        created_at=_num(s, "created_at", float, False, where),
    )


def _measures(d: dict, where: str) -> dict:
    """A step's or candidate's quality and cost (core.store.runs.Measures), each checked in turn."""
    return {k: _num(d, k, kind, True, where) for k, kind in MEASURE_TYPES.items()}


def _candidate(c: dict) -> CandidateRecord:
    where = f"candidate {c.get('step')}/{c.get('idx')}: "
    history = c.get("history", [])
    _need(
        isinstance(history, list)
        and len(history) <= MAX_HISTORY
        and all(
            isinstance(h, dict) and all(isinstance(v, (int, float, str, bool, type(None))) for v in h.values())
            for h in history
        ),
        f"inconsistent bundle: {where}history is not a list of epoch rows",
    )
    _need(c.get("status") in tuple(CandidateStatus), f"inconsistent bundle: {where}unknown status")
    return CandidateRecord(
        step=_num(c, "step", int, False, where),
        idx=_num(c, "idx", int, False, where),
        edge=_edge(c.get("edge"), where),
        genotype=Genotype.from_dict(_dict(c.get("genotype"), f"{where}genotype")),
        status=c["status"],
        **_measures(c, where),
        score=_num(c, "score", float, True, where),
        epochs=_num(c, "epochs", int, False, where),
        stop_reason=_text(c, "stop_reason", where),
        wall_s=_num(c, "wall_s", float, False, where),
        error=_text(c, "error", where),
        history=tuple(history),
    )


def _replay(cfg: SearchConfig, steps: list[StepRecord], cands: list[CandidateRecord]) -> None:
    """The steps must be the search the settings describe: dense start, one removal per step."""
    by_step: dict[int, list[CandidateRecord]] = {}
    for c in cands:
        _need(0 <= c.step < len(steps), f"inconsistent bundle: a candidate of step {c.step}, which has no record")
        by_step.setdefault(c.step, []).append(c)
    for n, group in by_step.items():
        _need(len({c.idx for c in group}) == len(group), f"inconsistent bundle: step {n} repeats a candidate")
    dense = steps[0].genotype  # the start: any cell of the task with the configured node count
    _need(
        dense.kind == cfg.task and dense.n_nodes == cfg.nodes,
        f"inconsistent bundle: step 0's cell is not a {cfg.nodes}-node {cfg.task} cell",
    )
    for s in steps:
        parent = dense if s.step == 0 else steps[s.step - 1].genotype
        expected = dense if s.step == 0 else parent.without_edge(s.removed) if s.removed in parent.edges else None
        _need(
            (s.removed is None) == (s.step == 0) and expected == s.genotype,
            f"inconsistent bundle: step {s.step}'s cell is not its parent without the removed edge",
        )
        _need(s.edges == s.genotype.num_edges, f"inconsistent bundle: step {s.step}'s edge count is wrong")
        group = by_step.get(s.step, [])
        chosen = [c for c in group if c.edge == s.removed and c.genotype == s.genotype and c.status == "ok"]
        _need(
            ranges.same_numbers(s, chosen),  # its score, quality and cost are its choice's
            f"inconsistent bundle: step {s.step}'s choice is not one of its trained candidates",
        )
        for c in group:
            ok = (
                (c.edge is None and c.genotype == dense)
                if s.step == 0
                else (c.edge in parent.edges and c.genotype == parent.without_edge(c.edge))
            )
            _need(ok, f"inconsistent bundle: candidate {c.step}/{c.idx}'s cell does not match its edge")
