"""The live progress a working process keeps in its row, as typed values.

A search (runs.progress) and a training job (jobs.progress) each rewrite one JSON object on
every heartbeat, and pages in other threads or processes read it to draw a progress bar and
an ETA. The writer builds one of these values and the store keeps `to_dict()`; the readers get
the value back from the record, so both sides name the same fields. The stored JSON is what
it always was (an empty object when nothing is in progress), so old stores read unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class SearchProgress:
    """Where a running search is: step `step` trains `k` candidates of a cell with `edges` edges,
    `candidate` of them are done (`done`: their CandidateRecord dicts), and the one in training
    is at `epoch`. `step` is None when no step is in progress (the stored object is empty)."""

    step: int | None = None
    candidate: int = 0
    k: int = 0
    edges: int = 0
    started: float = 0.0
    epoch: int | None = None
    done: tuple[dict, ...] = ()

    @property
    def active(self) -> bool:
        """A step is in progress (the row holds a non-empty progress object)."""
        return self.step is not None

    def to_dict(self) -> dict:
        if not self.active:
            return {}
        out = {
            "step": self.step,
            "candidate": self.candidate,
            "k": self.k,
            "edges": self.edges,
            "started": self.started,
        }
        if self.epoch is not None:
            out["epoch"] = self.epoch
        if self.done:
            out["done"] = list(self.done)
        return out

    @classmethod
    def from_dict(cls, d: dict | None) -> "SearchProgress":
        d = d or {}
        if not d:
            return cls()
        return cls(
            step=d.get("step"),
            candidate=int(d.get("candidate", 0)),
            k=int(d.get("k", 0)),
            edges=int(d.get("edges", 0)),
            started=float(d.get("started", 0.0)),
            epoch=d.get("epoch"),
            done=tuple(d.get("done") or ()),
        )


@dataclass(frozen=True)
class JobProgress:
    """Where a running training job is: `phase` (train, validate, export...) of epoch `epoch` of
    `epochs`, batch `batch` of `batches`; `fraction` of the whole job done, `elapsed_s` this
    session, `eta_s` (None until the pace is known). `extra`: anything a trainer adds."""

    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    fraction: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """The job has reported where it is (the row holds a non-empty progress object)."""
        return bool(self.phase)

    def to_dict(self) -> dict:
        if not self.active:
            return {}
        return {
            "phase": self.phase,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "batch": self.batch,
            "batches": self.batches,
            "fraction": self.fraction,
            "elapsed_s": self.elapsed_s,
            "eta_s": self.eta_s,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> "JobProgress":
        d = d or {}
        if not d:
            return cls()
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in names}, extra={k: v for k, v in d.items() if k not in names})


@dataclass(frozen=True)
class ControlProgress:
    """Where a running random control is: training its `target`-edge cells, `done` of `total`
    cells committed (`cells`: this session's ControlCell dicts at this count), the one in
    training is `sample` at `epoch`. `target` is None when nothing is in progress."""

    target: int | None = None
    done: int = 0
    total: int = 0
    started: float = 0.0
    sample: int | None = None
    epoch: int | None = None
    cells: tuple[dict, ...] = ()

    @property
    def active(self) -> bool:
        return self.target is not None

    def to_dict(self) -> dict:
        if not self.active:
            return {}
        out = {"target": self.target, "done": self.done, "total": self.total, "started": self.started}
        out.update({k: v for k, v in (("sample", self.sample), ("epoch", self.epoch)) if v is not None})
        if self.cells:
            out["cells"] = list(self.cells)
        return out

    @classmethod
    def from_dict(cls, d: dict | None) -> "ControlProgress":
        d = d or {}
        if not d:
            return cls()
        return cls(
            target=d.get("target"),
            done=int(d.get("done", 0)),
            total=int(d.get("total", 0)),
            started=float(d.get("started", 0.0)),
            sample=d.get("sample"),
            epoch=d.get("epoch"),
            cells=tuple(d.get("cells") or ()),
        )
