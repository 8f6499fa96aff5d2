"""Side-by-side comparison of genotypes from anywhere (runs, presets, uploads).

A `CompareItem` is what every picker produces: the genotype, where it came from, the
quality its search measured (if any) and, for RNN cells, the language model it lives in.
New sources (e.g. final-training jobs with measured accuracy) only need to build items.
CNN and RNN costs are different quantities (MACs of a network vs edges x h^2 of a
cell), so a mixed selection is refused rather than shown in one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from core.cell.genotype import Edge, Genotype, edge_str
from core.data.spec import PTB_VOCAB
from core.errors import UserError
from core.store.runs import RunRecord, StepRecord

DEFAULT_EMB = DEFAULT_HIDDEN = 100


class CompareError(UserError, ValueError):
    """A selection that cannot be compared (e.g. a CNN and an RNN genotype): one line."""


@dataclass(frozen=True)
class CompareItem:
    label: str
    genotype: Genotype
    source: str = ""
    quality: float | None = None  # proxy accuracy (cnn, fraction) or perplexity (rnn) from a search
    quality_note: str = ""  # what that quality was measured on, e.g. "run 3, digits proxy"
    emb: int = DEFAULT_EMB  # RNN language model around the cell
    hidden: int = DEFAULT_HIDDEN
    vocab: int = PTB_VOCAB  # a preset's or an upload's LM: PTB's, as published


def common_kind(items: Sequence[CompareItem]) -> str:
    """The one kind all items share; a mix of CNN and RNN is a CompareError."""
    kinds = sorted({it.genotype.kind for it in items})
    if len(kinds) > 1:
        cnn = [it.label for it in items if it.genotype.kind == "cnn"]
        rnn = [it.label for it in items if it.genotype.kind == "rnn"]
        raise CompareError(
            f"cannot compare costs of CNN cells ({', '.join(cnn)}) with RNN cells "
            f"({', '.join(rnn)}): MACs and FLOPs measure different networks; pick one kind"
        )
    if not kinds:
        raise CompareError("nothing to compare: pick at least two genotypes")
    return kinds[0]


def only_in(items: Sequence[CompareItem]) -> list[tuple[Edge, ...]]:
    """For each item, the edges (after pruning) that none of the other items has."""
    edge_sets = [set(it.genotype.pruned().edges) for it in items]
    out = []
    for i, edges in enumerate(edge_sets):
        others = set().union(*(e for j, e in enumerate(edge_sets) if j != i))
        out.append(tuple(sorted(edges - others)))
    return out


def only_in_text(items: Sequence[CompareItem]) -> list[str]:
    """`only_in` as one readable line per item."""
    return [
        f"{it.label}: {', '.join(edge_str(e) for e in edges) or 'none'}" for it, edges in zip(items, only_in(items))
    ]


PROXY_NET, IMAGENET_NET = "CIFAR-10 proxy net 32x32", "ImageNet-224 ShrinkCNN"


def cost_columns(network: str) -> tuple[str, str]:
    """(params, MACs) column names for a network: every cost column says what it was measured on."""
    return f"params · {network}", f"MACs · {network}"


def cost_rows(items: Sequence[CompareItem], imagenet: bool = True) -> list[dict]:
    """Params and compute of each item; CNN in the spec's proxy net and (imagenet=True) in the
    ImageNet-224 ShrinkCNN body, which costs about a second per new cell on a CPU.

    The proxy network here is the spec's (CIFAR-10 32x32, stem 32, width 16) for every
    item, so cells from runs on other data still compare on one scale; a run's own pages
    show costs in that run's proxy net (e.g. 8x8 digits), which are smaller numbers.
    """
    from core.insight.summary import summarize_genotype

    kind = common_kind(items)
    rows = []
    for it in items:
        g = it.genotype
        row = {"genotype": it.label, "source": it.source, "nodes": g.n_nodes, "edges": g.pruned().num_edges}
        if kind == "rnn":
            cost = summarize_genotype(g, emb=it.emb, hidden=it.hidden, vocab=it.vocab)
            row.update(
                {
                    "emb=h": it.hidden,
                    "vocab": it.vocab,
                    "LM params": cost["params"],
                    "cell FLOPs": cost["flops"],
                    "proxy perplexity": None if it.quality is None else round(it.quality, 2),
                }
            )
        else:
            row.update(dict(zip(cost_columns(PROXY_NET), cnn_costs(g.to_json(), "proxy"))))
            if imagenet:
                row.update(dict(zip(cost_columns(IMAGENET_NET), cnn_costs(g.to_json(), "imagenet"))))
            row["proxy accuracy %"] = None if it.quality is None else round(100 * it.quality, 2)
        row["measured on"] = it.quality_note
        rows.append(row)
    return rows


@lru_cache(maxsize=512)
def cnn_costs(genotype_json: str, network: str) -> tuple[int, int]:
    """(params, MACs) of a CNN cell in `network`, memoised per process: costing the ImageNet
    network runs a 224x224 forward pass (seconds on a busy CPU), and Compare asks again on
    every rerun. Keyed by the genotype's JSON so equal cells share one entry."""
    from core.insight.summary import summarize_genotype

    out = summarize_genotype(Genotype.from_json(genotype_json), network=network)
    return out["params"], out["macs"]


def rnn_lm_size(config: dict, steps: Sequence[StepRecord] = (), recorded: int | None = None) -> tuple[int, int, int]:
    """(emb, hidden, vocab) of the language model a run (or job) trained in; emb/hidden come from
    its config, the vocabulary from `lm_vocab`."""
    emb, hidden = int(config.get("emb", DEFAULT_EMB)), int(config.get("hidden", DEFAULT_HIDDEN))
    return emb, hidden, lm_vocab(config, steps, recorded)


def lm_vocab(config: dict, steps: Sequence[StepRecord] = (), recorded: int | None = None) -> int:
    """The vocabulary size of the language model a run or a training job used: the one place that
    decides it when the record lacks it.

    The rule, in order: the size recorded when the corpus was loaded (`recorded`: RunRecord.vocab_size,
    a job's metrics["vocab"]); for a run recorded before sizes were kept, the size recovered exactly
    from a step's parameter count (params = V*e + V + (e+h)*2h + edges*2h^2, core.nets.rnn.rnn_cost);
    else the config's max_vocab cap (the size whenever the corpus had that many words); else PTB's
    10,000 (PTB_VOCAB), the corpus the RNN presets were measured on.
    """
    if recorded:
        return int(recorded)
    emb, hidden = int(config.get("emb", DEFAULT_EMB)), int(config.get("hidden", DEFAULT_HIDDEN))
    for s in steps:
        if s.params:
            rest = s.params - (emb + hidden) * 2 * hidden - s.genotype.pruned().num_edges * 2 * hidden * hidden
            if rest > 0 and rest % (emb + 1) == 0:
                return rest // (emb + 1)
    return int(config.get("max_vocab") or PTB_VOCAB)


def run_lm(run: RunRecord, steps: Sequence[StepRecord]) -> dict:
    """CompareItem's language-model fields (emb, hidden, vocab) for a cell of `run`; {} for a CNN run."""
    if run.task != "rnn":
        return {}
    emb, hidden, vocab = rnn_lm_size(run.config, steps, run.vocab_size)
    return {"emb": emb, "hidden": hidden, "vocab": vocab}


@lru_cache(maxsize=128)
def torchinfo_table(genotype_json: str) -> str:
    """torchinfo's layer table of a CNN cell in the spec's proxy network ('' for RNN cells,
    whose costs are counted from shapes), memoised like `cnn_costs`."""
    from core.insight.summary import summarize_genotype

    g = Genotype.from_json(genotype_json)
    if g.kind != "cnn":
        return ""
    return summarize_genotype(g, network="proxy", with_table=True)["table"]
