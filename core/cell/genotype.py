"""Genotype: a cell DAG as a small immutable value.

A genotype is what the search manipulates and what users export and compare, so it is
plain data (node count, one op per node, forward edges) with a stable JSON form and a
content hash. Node 0 is the cell input; its op is kept (the paper assigns ops to all N
nodes) but never applied.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Iterable

from core.errors import UserError

CNN_OPS = ("sep3x3", "conv1x1")
RNN_OPS = ("tanh", "relu", "sigmoid", "identity")
OPS = {"cnn": CNN_OPS, "rnn": RNN_OPS}
INPUT_OP = "input"
MIN_NODES, MAX_NODES = 2, 16
MAX_NAME = 200  # characters: a name is a label, and it goes into the store and the logs
FORMAT = "autoshrink-genotype/1"

Edge = tuple[int, int]


class GenotypeError(UserError, ValueError):
    """A genotype that breaks the rules; the message is one line naming the problem."""


@dataclass(frozen=True)
class Genotype:
    kind: str
    ops: tuple[str, ...]
    edges: tuple[Edge, ...]
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "edges", tuple(sorted({(int(i), int(j)) for i, j in self.edges})))
        self.validate()

    # ----- structure -------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    def validate(self) -> None:
        if self.kind not in OPS:
            raise GenotypeError(f"unknown genotype kind {self.kind!r}; expected 'cnn' or 'rnn'")
        if len(self.name) > MAX_NAME:
            raise GenotypeError(f"genotype name is {len(self.name):,} characters; at most {MAX_NAME}")
        n = self.n_nodes
        if not MIN_NODES <= n <= MAX_NODES:
            raise GenotypeError(f"node count {n} is outside {MIN_NODES}..{MAX_NODES}")
        allowed = OPS[self.kind]
        for idx, op in enumerate(self.ops):
            if op not in allowed and not (idx == 0 and op == INPUT_OP):
                raise GenotypeError(
                    f"unknown op {op!r} at node {idx} for a {self.kind} cell; allowed: {', '.join(allowed)}"
                )
        for i, j in self.edges:
            if not (0 <= i < n and 0 <= j < n):
                raise GenotypeError(f"edge [{i}, {j}] names a node outside 0..{n - 1}")
            if i == j:
                raise GenotypeError(f"edge [{i}, {j}] is a self edge")
            if i > j:
                raise GenotypeError(f"edge [{i}, {j}] goes backward; edges must go from a lower to a higher node")

    def reachable(self) -> frozenset[int]:
        """Nodes reachable from node 0 along the edges (node 0 included)."""
        seen = {0}
        for i, j in self.edges:  # edges are sorted by source, sources precede targets
            if i in seen:
                seen.add(j)
        return frozenset(seen)

    def pruned(self) -> "Genotype":
        """Drop every edge that leaves a node unreachable from node 0 (the spec's pruning)."""
        live = self.reachable()
        edges = tuple(e for e in self.edges if e[0] in live)
        if edges == self.edges:
            return self
        return Genotype(self.kind, self.ops, edges, self.name)

    def leaves(self) -> tuple[int, ...]:
        """Reachable nodes other than 0 with no out-edge to a reachable node; (0,) if 0 has none."""
        live = self.reachable()
        has_out = {i for i, j in self.edges if i in live and j in live}
        if 0 not in has_out:
            return (0,)
        return tuple(sorted(n for n in live if n != 0 and n not in has_out))

    def inputs(self, node: int) -> tuple[int, ...]:
        """Sources of the edges into `node`, ascending (the concat order of a CNN node)."""
        return tuple(i for i, j in self.edges if j == node)

    def without_edge(self, edge: Edge) -> "Genotype":
        """A copy with `edge` removed and pruned: one shrink candidate."""
        if tuple(edge) not in self.edges:
            raise GenotypeError(f"edge {edge[0]}-{edge[1]} is not in the genotype")
        rest = tuple(e for e in self.edges if e != tuple(edge))
        return Genotype(self.kind, self.ops, rest, self.name).pruned()

    # ----- identity and JSON -----------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "kind": self.kind,
            "name": self.name,
            "nodes": self.n_nodes,
            "ops": list(self.ops),
            "edges": [list(e) for e in self.edges],
        }

    def to_json(self) -> str:
        """Stable, human-readable JSON: one edge per line keeps diffs and eyeballing easy."""
        d = self.to_dict()
        edges = ",\n    ".join(json.dumps(e) for e in d["edges"])
        head = json.dumps({k: v for k, v in d.items() if k != "edges"}, indent=2)[:-2]
        return f'{head},\n  "edges": [\n    {edges}\n  ]\n}}\n' if d["edges"] else f'{head},\n  "edges": []\n}}\n'

    @property
    def hash(self) -> str:
        """Content hash (kind, ops, edges): the identity of a cell regardless of its name."""
        body = json.dumps([self.kind, list(self.ops), [list(e) for e in self.edges]])
        return hashlib.sha1(body.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> "Genotype":
        if not isinstance(d, dict):
            raise GenotypeError("genotype JSON must be an object")
        missing = [k for k in ("kind", "ops", "edges") if k not in d]
        if missing:
            raise GenotypeError(f"genotype JSON lacks {', '.join(missing)}")
        ops, edges = d["ops"], d["edges"]
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise GenotypeError("genotype 'ops' must be a list of op names")
        if not isinstance(edges, list) or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 and all(_is_int(x) for x in e) for e in edges
        ):
            raise GenotypeError("genotype 'edges' must be a list of [from, to] integer pairs")
        if "nodes" in d and d["nodes"] != len(ops):
            raise GenotypeError(f"genotype says {d['nodes']} nodes but lists {len(ops)} ops")
        name = d.get("name", "")
        if not isinstance(name, str):
            raise GenotypeError("genotype 'name' must be a string")
        return cls(str(d["kind"]), tuple(ops), tuple(tuple(e) for e in edges), name)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Genotype":
        return cls.from_dict(parse_json(text, "genotype file"))

    # ----- construction ----------------------------------------------------------------
    @classmethod
    def dense(cls, kind: str, n_nodes: int, seed: int, name: str = "") -> "Genotype":
        """The search's start: every forward edge. CNN ops are dealt in equal shares in a seeded
        shuffled order (official ops_gen.py); RNN ops are drawn independently and uniformly per
        node (official searching/rnn/utils.py random_choose_ops), seeded here where the official
        draw is not, so a run can be reproduced."""
        if kind not in OPS:
            raise GenotypeError(f"unknown genotype kind {kind!r}; expected 'cnn' or 'rnn'")
        if not MIN_NODES <= n_nodes <= MAX_NODES:
            raise GenotypeError(f"node count {n_nodes} is outside {MIN_NODES}..{MAX_NODES}")
        ops = draw_ops(OPS[kind], n_nodes, seed) if kind == "rnn" else assign_ops(OPS[kind], n_nodes, seed)
        edges = tuple((i, j) for j in range(n_nodes) for i in range(j))
        return cls(kind, ops, edges, name)


def assign_ops(ops: Iterable[str], n_nodes: int, seed: int) -> tuple[str, ...]:
    """Equal shares of each op over the nodes, in a seeded shuffled order."""
    ops = tuple(ops)
    dealt = [ops[i % len(ops)] for i in range(n_nodes)]
    random.Random(seed).shuffle(dealt)
    return tuple(dealt)


def _is_int(x: object) -> bool:
    """A JSON integer: bool is an int subclass in Python, but `true` is not a node number."""
    return isinstance(x, int) and not isinstance(x, bool)


def parse_json(text: str | bytes, what: str) -> object:
    """json.loads with every failure one GenotypeError line, including nesting so deep that
    the parser recurses out of stack (RecursionError), which no genotype needs."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenotypeError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise GenotypeError(f"{what} nests too deeply to be a genotype") from None


def draw_ops(ops: Iterable[str], n_nodes: int, seed: int) -> tuple[str, ...]:
    """One independent, uniform, seeded draw per node: any multiset of ops can start a search
    (the published ShrinkRNN's tanh x2, sigmoid x2, identity x2 among them)."""
    ops = tuple(ops)
    rng = random.Random(seed)
    return tuple(ops[rng.randrange(len(ops))] for _ in range(n_nodes))


def edge_str(edge: Edge | None) -> str:
    return "-" if edge is None else f"{edge[0]}-{edge[1]}"
