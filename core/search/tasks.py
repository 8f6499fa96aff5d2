"""Proxy tasks: what it takes to turn one candidate genotype into a scored record.

A task owns the proxy data (loaded once, kept on the training device), builds the
network for a genotype, trains it with the paper's proxy rules, measures its cost and
applies the paper's score. The search loop hands a step's jobs, with the task, to the
evaluator the task resolved (core.search.evaluators.evaluate).
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import torch

from core.cell.genotype import Genotype
from core.device import resolve_precision
from core.result import CandidateStatus, Cost, TrainResult
from core.search.candidates import StopFn
from core.search.config import SearchConfig
from core.search.evaluators import resolve_evaluator


def cnn_score(accuracy: float, macs: float) -> float:
    """Paper: accuracy (fraction) - 0.1 x (log10(MACs) - 6)."""
    return accuracy - 0.1 * (math.log10(macs) - 6)


def rnn_score(perplexity: float, flops: float) -> float:
    """Paper: (200 - perplexity) x 0.25 - (log10(FLOPs) - 6)."""
    return (200.0 - perplexity) * 0.25 - (math.log10(flops) - 6)


class ProxyTask(Protocol):
    """What the search loop and the evaluators use of a proxy task. The batched evaluator (CNN
    only) also reads CNNProxyTask's `data` (ImageData on the device) and `net` (CNNConfig)."""

    kind: str  # "cnn" or "rnn"
    device: torch.device
    evaluator: str  # the resolved evaluator's name (resolve_evaluator)
    cfg: SearchConfig
    precision: str  # "fp32" or "bf16"
    train_cfg: object  # ProxyTrainConfig (CNN) or RNNProxyConfig (RNN)

    def build(self, genotype: Genotype, seed: int) -> torch.nn.Module: ...

    def cost(self, genotype: Genotype) -> Cost: ...

    def score(self, res: TrainResult, cost: Cost) -> float | None: ...

    def train(self, model, data_seed: int, should_stop: StopFn, on_epoch: Callable[[dict], None]) -> TrainResult: ...

    def worker_data(self) -> object:
        """The proxy data as a worker (pool process, Ray task) receives it: on the CPU."""
        ...


class _ProxyTaskBase:
    """What the CNN and RNN tasks do alike: keep the settings, device, precision and resolved
    evaluator; score a result by its quality (failed or non-finite: no score); train a model with
    the task's proxy trainer on its data. Each task names its quality, score and trainer."""

    quality: str  # the TrainResult field the score reads: "accuracy" or "perplexity"
    train_cfg: object

    def _keep_settings(self, cfg: SearchConfig, device: torch.device, log: Callable[[str], None]) -> None:
        self.cfg, self.device = cfg, device
        self.precision = resolve_precision(cfg.precision, device)  # "fp32" or "bf16"
        self.evaluator = resolve_evaluator(cfg, device, log)

    def _score(self, quality: float, cost: Cost) -> float:
        raise NotImplementedError

    def _trainer(self) -> tuple[Callable[..., TrainResult], object]:
        """The proxy trainer and the data it trains on."""
        raise NotImplementedError

    def score(self, res: TrainResult, cost: Cost) -> float | None:
        quality = getattr(res, self.quality)
        ok = res.status == CandidateStatus.OK and quality is not None and math.isfinite(quality)
        return self._score(quality, cost) if ok else None

    def train(self, model, data_seed, should_stop, on_epoch) -> TrainResult:
        trainer, data = self._trainer()
        return trainer(
            model,
            data,
            self.train_cfg,
            data_seed=data_seed,
            device=self.device,
            should_stop=should_stop,
            on_epoch=on_epoch,
            precision=self.precision,
        )


class CNNProxyTask(_ProxyTaskBase):
    """CIFAR-10 (or digits) proxy classification with the paper's proxy network."""

    kind, quality = "cnn", "accuracy"

    def __init__(self, cfg: SearchConfig, device: torch.device, log: Callable[[str], None], data=None) -> None:
        """`data`: the proxy ImageData when the caller has it already (a Ray worker), else loaded."""
        from core.data.images import load_proxy
        from core.nets.cnn import proxy_config
        from core.search.proxy_cnn import ProxyTrainConfig

        self._keep_settings(cfg, device, log)
        if data is None:
            data = load_proxy(
                cfg.data_spec,
                seed=cfg.seed,
                per_class_train=cfg.per_class_train,
                per_class_val=cfg.per_class_val,
                log=log,
            )
        self.data = data.to(device)
        self.net = proxy_config(
            **_settings(data, "in_channels", "num_classes", "input_size"),
            **_settings(cfg, "stem_channels", "base_width"),
        )
        self.train_cfg = ProxyTrainConfig(**_settings(cfg, "epochs", "batch_size", "lr", "weight_decay", "max_batches"))
        self._costs: dict[str, Cost] = {}

    def worker_data(self):
        return self.data.to("cpu")

    def cost(self, genotype: Genotype) -> Cost:
        from core.nets.cnn import cnn_cost

        if genotype.hash not in self._costs:
            self._costs[genotype.hash] = cnn_cost(genotype, self.net)
        return self._costs[genotype.hash]

    def build(self, genotype: Genotype, seed: int) -> torch.nn.Module:
        from core.nets.cnn import build_cnn

        torch.manual_seed(seed)
        return build_cnn(genotype, self.net)

    def _score(self, quality: float, cost: Cost) -> float:
        return cnn_score(quality, cost.macs)

    def _trainer(self) -> tuple[Callable[..., TrainResult], object]:
        from core.search.proxy_cnn import train_proxy

        return train_proxy, self.data


class RNNProxyTask(_ProxyTaskBase):
    """Penn Treebank (or the embedded corpus) language modelling with the DAG RNN cell."""

    kind, quality = "rnn", "perplexity"

    def __init__(self, cfg: SearchConfig, device: torch.device, log: Callable[[str], None], corpus=None) -> None:
        """`corpus`: the tokenised Corpus when the caller has it already (a Ray worker), else loaded."""
        from core.data.corpus import load_corpus
        from core.search.proxy_rnn import RNNProxyConfig

        self._keep_settings(cfg, device, log)  # precision: of the decoder
        self.corpus = (
            corpus if corpus is not None else load_corpus(cfg.data_spec, max_vocab=cfg.max_vocab or None, log=log)
        )
        self.pretrained = _pretrained_embedding(cfg, self.corpus.vocab, log)
        self.train_cfg = RNNProxyConfig(
            **_settings(cfg, "epochs", "lr", "clip", "batch_size", "bptt"),
            max_batches_per_epoch=cfg.max_batches or None,
            eval_batch_size=cfg.batch_size,
        )  # the cell runs step by step:
        # validating 10 columns (the DARTS habit) costs more sequential steps than training does

    def worker_data(self):
        return self.corpus

    def cost(self, genotype: Genotype) -> Cost:
        from core.nets.rnn import rnn_cost

        return rnn_cost(genotype, self.cfg.emb, self.cfg.hidden, self.corpus.vocab_size)

    def build(self, genotype: Genotype, seed: int) -> torch.nn.Module:
        from core.nets.rnn import RNNLanguageModel

        torch.manual_seed(seed)
        model = RNNLanguageModel(genotype, self.corpus.vocab_size, emb=self.cfg.emb, hidden=self.cfg.hidden)
        if self.pretrained is not None:
            with torch.no_grad():
                model.encoder.weight.copy_(self.pretrained)
        return model

    def _score(self, quality: float, cost: Cost) -> float:
        return rnn_score(quality, cost.flops)

    def _trainer(self) -> tuple[Callable[..., TrainResult], object]:
        from core.search.proxy_rnn import train_rnn_proxy

        return train_rnn_proxy, self.corpus


def _pretrained_embedding(cfg: SearchConfig, vocab: list[str], log: Callable[[str], None]) -> torch.Tensor | None:
    """The one embedding every candidate starts from under `glove:PATH` (None: each candidate's
    own U(+-0.1)); logged, so the run says which initialisation ran."""
    if not cfg.embedding_init.startswith("glove:"):
        log("embedding init: uniform U(-0.1, 0.1) per candidate (no GloVe; the official search uses GloVe 100-d)")
        return None
    from core.data.glove import glove_embedding, glove_path

    path = glove_path(cfg.embedding_init)
    emb, found = glove_embedding(path, vocab, cfg.emb, cfg.seed)
    log(
        f"embedding init: GloVe from {path}: {found:,} of {len(vocab):,} words, U(-0.5, 0.5) for the rest, "
        "the same tensor for every candidate"
    )
    return emb


def _settings(source: object, *names: str) -> dict:
    """The named attributes of `source`, as keyword arguments of a config of the same names."""
    return {name: getattr(source, name) for name in names}


def make_task(cfg: SearchConfig, device: torch.device, log: Callable[[str], None], data=None) -> ProxyTask:
    """The proxy task of `cfg`; `data` (ImageData or Corpus) skips loading when given."""
    return (CNNProxyTask if cfg.task == "cnn" else RNNProxyTask)(cfg, device, log, data)
