"""Search settings: one flat dataclass, the `demo` and `paper` presets per task, validation.

Flat on purpose: it is stored as JSON with every run (so a run can be resumed and
reproduced from the store alone), and every field is a CLI flag and a form field.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from core.cell.genotype import MAX_NODES, MIN_NODES
from core.device import DEVICES, PRECISIONS
from core.errors import ConfigError

TASKS = ("cnn", "rnn")
EVALUATORS = ("auto", "single", "batched", "pool", "ray")


@dataclass(frozen=True)
class SearchConfig:
    task: str = "cnn"
    preset: str = "paper"
    data: str = "cifar10"
    nodes: int = 8
    k: int = 10
    epochs: int = 20
    keep_fraction: float = 0.0
    seed: int = 0
    device: str = "auto"
    evaluator: str = "auto"        # the fastest correct local path (resolve_evaluator), unless set
    threads: int = 0               # torch CPU threads for training; 0 = all cores but one
    precision: str = "auto"        # auto = bf16 where native (core.device.resolve_precision), else fp32
    max_steps: int = 0             # 0 = until the stop rule
    # proxy training, shared names
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 1e-5
    # CNN proxy network and split
    stem_channels: int = 32
    base_width: int = 16
    per_class_train: int = 500
    per_class_val: int = 100
    # RNN proxy language model
    emb: int = 100
    hidden: int = 100
    bptt: int = 35
    clip: float = 0.25
    max_vocab: int = 0             # 0 = the corpus's own vocabulary
    max_batches: int = 0           # 0 = whole epochs; a cap for demos
    embedding_init: str = "uniform"  # "uniform" (U(+-0.1)) or "glove:PATH" (GloVe text, U(+-0.5) for missing words)
    # the ray evaluator (core.search.evaluators.ray_eval); ignored by the others
    ray_address: str = ""          # "" = $AUTOSHRINK_RAY_ADDRESS, else a local cluster sized to this machine
    ray_cpus_per_candidate: float = 1.0
    ray_gpus_per_candidate: float = 0.0  # > 0: candidates train on CUDA workers; 0.25 packs four on a GPU
    ray_chunk: int = 1             # candidates per Ray task (> 1: trained together by the batched evaluator)
    noise_seeds: int = 1           # step 0 trains the dense DAG this many times (seeds) to measure noise; 1 = off

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        # runs recorded before the precision setting existed trained in fp32: resume them so
        return cls(**{"precision": "fp32", **d}).validated()

    def target_edges(self) -> int:
        """The stop rule's edge count: round(keep_fraction x initial edges)."""
        initial = self.nodes * (self.nodes - 1) // 2
        return int(round(self.keep_fraction * initial))

    def expected_steps(self) -> int:
        """Steps until the stop rule if each removes one edge (pruning can make it fewer)."""
        initial = self.nodes * (self.nodes - 1) // 2
        steps = initial - max(self.target_edges(), 1)
        return min(steps, self.max_steps) if self.max_steps else steps

    def validated(self) -> "SearchConfig":
        infinite = [f.name for f in fields(self) if isinstance(v := getattr(self, f.name), float)
                    and not math.isfinite(v)]
        checks = [
            (not infinite, f"{', '.join(infinite).replace('_', ' ')} must be a finite number"),
            (self.task in TASKS, f"task must be one of {', '.join(TASKS)}, not {self.task!r}"),
            (self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, not {self.device!r}"),
            (self.precision in PRECISIONS,
             f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"),
            (self.evaluator in EVALUATORS,
             f"evaluator must be one of {', '.join(EVALUATORS)}, not {self.evaluator!r}"),
            (MIN_NODES <= self.nodes <= MAX_NODES, f"nodes must be in {MIN_NODES}..{MAX_NODES}, not {self.nodes}"),
            (1 <= self.k <= 1000, f"k must be at least 1, not {self.k}"),
            (1 <= self.epochs <= 10000, f"epochs must be at least 1, not {self.epochs}"),
            (0.0 <= self.keep_fraction < 1.0, f"keep fraction must be in [0, 1), not {self.keep_fraction}"),
            (self.seed >= 0, f"seed must be >= 0, not {self.seed}"),
            (self.threads >= 0, f"threads must be >= 0, not {self.threads}"),
            (self.max_steps >= 0, f"max steps must be >= 0, not {self.max_steps}"),
            (self.batch_size >= 1, f"batch size must be at least 1, not {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, not {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, not {self.weight_decay}"),
            (self.stem_channels >= 1 and self.base_width >= 1, "stem channels and base width must be >= 1"),
            (self.per_class_train >= 1 and self.per_class_val >= 1, "per-class image counts must be >= 1"),
            (self.emb >= 1 and self.hidden >= 1, "emb and hidden must be >= 1"),
            (self.task != "rnn" or self.emb == self.hidden,
             f"emb ({self.emb}) must equal hidden ({self.hidden}): the decoder is tied to the embedding"),
            (self.bptt >= 1 and self.clip > 0, "bptt must be >= 1 and clip > 0"),
            (self.max_vocab >= 0 and self.max_batches >= 0, "max vocab and max batches must be >= 0"),
            (1 <= self.noise_seeds <= 10, f"noise seeds must be in 1..10, not {self.noise_seeds}"),
            (bool(str(self.data).strip()), "data must name a dataset"),
            (self.embedding_init == "uniform" or (self.embedding_init.startswith("glove:")
                                                  and len(self.embedding_init) > len("glove:")),
             f"embedding init must be uniform or glove:PATH, not {self.embedding_init!r}"),
            (self.ray_cpus_per_candidate > 0, f"ray CPUs per candidate must be > 0, not {self.ray_cpus_per_candidate}"),
            (self.ray_gpus_per_candidate >= 0,
             f"ray GPUs per candidate must be >= 0, not {self.ray_gpus_per_candidate}"),
            (self.ray_chunk >= 1, f"ray chunk must be at least 1, not {self.ray_chunk}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


# Each preset is the full set of overrides on the dataclass defaults, per task.
PRESETS: dict[tuple[str, str], dict] = {
    # The paper's CNN search: N=8 (28 edges), k=10, 20 epochs, CIFAR-10 proxy, shrink to the end.
    ("cnn", "paper"): dict(data="cifar10", nodes=8, k=10, epochs=20, keep_fraction=0.0),
    # Laptop demo: the embedded digits, a small cell, few epochs; a whole search well under 1 min on 2 cores.
    # Batch 32, not 128: with ~12 batches an epoch BatchNorm's running statistics lag so far that the
    # paper's divergence rule fires on healthy candidates. 60 images a class keep accuracy near 90%, not
    # saturated. Digits is easy: small cells match big ones, so the cost term alone would shrink to 1-2
    # edges; keep 0.5 stops at half the edges, so the best snapshot is a real cell (the page says why).
    ("cnn", "demo"): dict(data="digits", nodes=5, k=4, epochs=3, keep_fraction=0.5, stem_channels=16,
                          base_width=8, batch_size=32, per_class_train=60, noise_seeds=3),
    # The paper's RNN search: N=6 (15 edges), k=10, e=h=100, 10 epochs, PTB proxy, keep 25%.
    ("rnn", "paper"): dict(data="ptb-proxy", nodes=6, k=10, epochs=10, keep_fraction=0.25, lr=20.0,
                           batch_size=128, weight_decay=0.0, emb=100, hidden=100, bptt=35, clip=0.25),
    # Laptop demo on the embedded corpus (Python's own docs): a 500-word vocabulary (unigram perplexity
    # ~107), e=h=64, batch 64, 5 epochs of 20 batches. The official schedule divides lr by 10 after the
    # 0-based epochs E-4 and E-2, so E=5 trains 2 epochs at lr 20, 2 at 2 and 1 at 0.2 (with E=4 the
    # first drop would come after one epoch). Candidates reach perplexity ~85-100, and at most steps
    # their spread is several times the noise measured over 3 seeds.
    ("rnn", "demo"): dict(data="embedded", nodes=4, k=3, epochs=5, keep_fraction=0.4, lr=20.0,
                          batch_size=64, weight_decay=0.0, emb=64, hidden=64, bptt=20, clip=0.25,
                          max_vocab=500, max_batches=20, noise_seeds=3),
}
PRESET_NAMES = ("demo", "paper")


def preset_config(task: str, preset: str, **overrides) -> SearchConfig:
    """A preset with user overrides on top; None values mean 'keep the preset's'."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if (task, preset) not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r} for {task}; choose {' or '.join(PRESET_NAMES)}")
    base = SearchConfig(task=task, preset=preset, **PRESETS[(task, preset)])
    known = {f.name for f in fields(SearchConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return replace(base, **{k: v for k, v in overrides.items() if v is not None}).validated()
