"""ShrinkRNN final training: the searched recurrent cell as a regularised PTB language model.

The recipe is the paper's (docs/FIDELITY.md, Final training, "ShrinkRNN settings"; the DARTS/AWD-LSTM
family): SGD at lr 20 with gradient clipping until validation stops improving, then averaged
SGD (torch.optim.ASGD with t0 = 0, lambd = 0: a plain running average of the iterates,
evaluated with the averaged weights); variational dropouts on outputs, hidden state, input
x and embedding input, word dropout, weight decay, and the activation-slowness penalty
beta * mean((h_t - h_{t-1})^2) on the cell's raw outputs.

Embedding-input dropout and input-x dropout are both variational masks over the same
(1, batch, e) features of x, and the product of two such independent masks is one mask of
keep probability (1 - p_i)(1 - p_x) with the matching 1/keep scale, so the model receives
the combined rate through its `dropout_x` and the distribution is exactly the paper's.

Resume is exact on CPU: window offsets come from (seed, epoch), the dropout masks from
torch's global generator whose state the checkpoint carries, and the optimizer state
(including ASGD's averages) is saved with the weights.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from core.cell.genotype import Genotype
from core.data.batches import bptt_windows
from core.data.corpus import Corpus, batchify, load_corpus
from core.device import autocast_dtype, resolve_precision
from core.nets.bptt import StepLoss, perplexity, train_bptt_epoch
from core.nets.evaluate import evaluate_lm
from core.nets.rnn import RNNLanguageModel, rnn_cost
from core.result import Cost
from core.seeds import derive_seed
from core.training.checkpoint import TrainState, load_checkpoint, rng_state, set_rng_state
from core.training.config import RNNTrainConfig
from core.training.context import JobContext, TrainingDiverged, TrainOutcome, finite
from core.training.export import RNN_BUILDER

BEST_FILE = "best.pt"
SGD, ASGD = "sgd", "asgd"


def combined_input_dropout(cfg: RNNTrainConfig) -> float:
    """Embedding-input and input-x dropout as the one variational mask they amount to."""
    return 1.0 - (1.0 - cfg.dropout_i) * (1.0 - cfg.dropout_x)


def build_language_model(genotype: Genotype, vocab_size: int, cfg: RNNTrainConfig) -> RNNLanguageModel:
    return RNNLanguageModel(
        genotype,
        vocab_size,
        emb=cfg.emb,
        hidden=cfg.hidden,
        dropout=cfg.dropout,
        dropout_h=cfg.dropout_h,
        dropout_x=combined_input_dropout(cfg),
        dropout_e=cfg.dropout_e,
    )


def model_config(vocab_size: int, cfg: RNNTrainConfig) -> dict:
    """The RNNLanguageModel keyword arguments (what the export's genotype JSON records)."""
    return {
        "vocab_size": vocab_size,
        "emb": cfg.emb,
        "hidden": cfg.hidden,
        "dropout": cfg.dropout,
        "dropout_h": cfg.dropout_h,
        "dropout_x": combined_input_dropout(cfg),
        "dropout_e": cfg.dropout_e,
    }


def make_optimizer(model: RNNLanguageModel, cfg: RNNTrainConfig, kind: str) -> torch.optim.Optimizer:
    if kind == ASGD:
        return torch.optim.ASGD(model.parameters(), lr=cfg.lr, t0=0, lambd=0.0, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@contextlib.contextmanager
def averaged_weights(model: RNNLanguageModel, opt: torch.optim.Optimizer) -> Iterator[None]:
    """Evaluate (or save) with ASGD's running averages in place of the current iterates."""
    swapped = []
    for p in model.parameters():
        ax = opt.state.get(p, {}).get("ax") if isinstance(opt, torch.optim.ASGD) else None
        if ax is not None:
            saved = p.data.clone()
            p.data.copy_(ax)
            swapped.append((p, saved))
    try:
        yield
    finally:
        for p, saved in swapped:
            p.data.copy_(saved)


def switch_to_asgd(cfg: RNNTrainConfig, val_history: list[float], val_loss: float) -> bool:
    """The non-monotone trigger: switch once this epoch is worse than the best validation
    loss of all epochs except the last `nonmono` ones."""
    return cfg.asgd and len(val_history) > cfg.nonmono and val_loss > min(val_history[: -cfg.nonmono])


@dataclass
class RNNState(TrainState):
    """The end-of-epoch checkpoint: TrainState plus the optimizer phase and what the ASGD
    trigger and the best-weights file compare with."""

    phase: str
    val_history: list[float]
    best: float


@dataclass
class _Job:
    """One training job's moving parts, resumed from a checkpoint or fresh."""

    model: RNNLanguageModel
    opt: torch.optim.Optimizer
    corpus: Corpus
    cost: Cost
    train: Tensor
    valid: Tensor
    per_epoch: int
    first: int = 1
    phase: str = SGD
    history: list[dict] = field(default_factory=list)
    val_history: list[float] = field(default_factory=list)
    best: float = math.inf

    def summary(self) -> dict:
        return _metrics(self.history, self.cost, self.corpus)


def train_rnn(ctx: JobContext, genotype: Genotype, cfg: RNNTrainConfig, device: torch.device) -> TrainOutcome:
    """Train (or resume) the ShrinkRNN language model of `genotype` under `cfg`."""
    job = _prepare(ctx, genotype, cfg, device)
    ctx.log(
        f"{job.corpus.name}: vocabulary {job.corpus.vocab_size:,}, {job.corpus.train.numel():,} train "
        f"tokens; {job.cost.params:,} params, {job.cost.flops:,} cell FLOPs per step"
    )
    ctx.begin(job.first, cfg.epochs, job.per_epoch)
    for epoch in range(job.first, cfg.epochs + 1):
        if not _run_epoch(ctx, job, cfg, epoch):
            return TrainOutcome(stopped=True, metrics=job.summary())
    return _finish(ctx, job, cfg, device)


def _prepare(ctx: JobContext, genotype: Genotype, cfg: RNNTrainConfig, device: torch.device) -> _Job:
    """Load the corpus, build the model and its batches, and resume from the checkpoint if any."""
    corpus = load_corpus(cfg.data, max_vocab=cfg.max_vocab or None, log=ctx.log)
    for note in corpus.notes:
        ctx.log(note)
    cost = rnn_cost(genotype, cfg.emb, cfg.hidden, corpus.vocab_size)
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_language_model(genotype, corpus.vocab_size, cfg).to(device)
    model.matmul_dtype = autocast_dtype(resolve_precision(cfg.precision, device))  # decoder and cell matmuls in bf16
    train = batchify(corpus.train, cfg.batch_size, device)
    windows = len(list(bptt_windows(train.size(0), cfg.bptt, cfg.bptt)))
    job = _Job(
        model=model,
        opt=make_optimizer(model, cfg, SGD),
        corpus=corpus,
        cost=cost,
        train=train,
        valid=batchify(corpus.valid, cfg.eval_batch_size, device),
        per_epoch=min(windows, cfg.max_batches) if cfg.max_batches else windows,
    )
    saved = ctx.resume_state()
    if saved is not None:
        state = RNNState.from_dict(saved)
        model.load_state_dict(state.model)
        job.opt = make_optimizer(model, cfg, state.phase)
        job.opt.load_state_dict(state.optimizer)
        set_rng_state(state.rng)
        job.first, job.phase, job.history = state.epoch + 1, state.phase, state.history
        job.val_history, job.best = state.val_history, float(state.best)
    return job


def _slowness_loss(beta: float) -> StepLoss:
    """The training step's loss: cross-entropy (reported, comparable to validation) and, as
    the objective, that plus beta * mean((h_t - h_{t-1})^2) over the cell's raw outputs."""

    def step(model: RNNLanguageModel, inputs: Tensor, hidden: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        log_probs, hidden, states = model.forward_with_states(inputs, hidden)
        loss = F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), targets.reshape(-1))
        objective = loss
        if beta > 0 and inputs.size(0) > 1:
            objective = loss + beta * (states[1:] - states[:-1]).pow(2).mean()
        return loss, objective, hidden

    return step


def _run_epoch(ctx: JobContext, job: _Job, cfg: RNNTrainConfig, epoch: int) -> bool:
    """Train, validate (with the averaged weights once ASGD runs), maybe switch to ASGD, and
    checkpoint one epoch; False if a stop was asked during it."""
    offset = random.Random(derive_seed(cfg.seed, "offset", epoch)).randint(1, cfg.bptt)
    t0 = time.perf_counter()
    out = train_bptt_epoch(
        job.model,
        job.opt,
        job.train,
        cfg.bptt,
        offset,
        cfg.clip,
        max_batches=cfg.max_batches or None,
        step_loss=_slowness_loss(cfg.slowness),
        should_stop=ctx.should_stop,
        on_batch=lambda b: ctx.progress(epoch, b),
    )
    if out is None:
        return False
    train_s = time.perf_counter() - t0
    if not finite(out.mean):
        raise TrainingDiverged(
            f"training loss became {out.mean} in epoch {epoch}; lower the learning rate (now {cfg.lr:g})"
        )
    ctx.progress(epoch, job.per_epoch, phase="validate", force=True)
    val_loss = _validate(ctx, job, cfg, epoch)
    row = {
        "epoch": epoch,
        "train_loss": out.mean,
        "train_ppl": perplexity(out.mean),
        "val_loss": val_loss,
        "val_ppl": perplexity(val_loss),
        "lr": cfg.lr,
        "throughput": out.tokens / train_s,
        "seconds": time.perf_counter() - t0,
        "optimizer": job.phase,
    }
    job.history.append(row)
    if job.phase == SGD and switch_to_asgd(cfg, job.val_history, val_loss):
        job.phase, job.opt = ASGD, make_optimizer(job.model, cfg, ASGD)
        ctx.log(f"epoch {epoch}: validation stopped improving; switching to averaged SGD")
    job.val_history.append(val_loss)
    ctx.log(
        f"epoch {epoch}/{cfg.epochs}: train ppl {row['train_ppl']:.1f}, valid ppl "
        f"{row['val_ppl']:.1f} ({row['optimizer']}), {row['throughput']:.0f} tokens/s"
    )
    ctx.epoch_done(row, _checkpoint(job, epoch))
    return True


def _validate(ctx: JobContext, job: _Job, cfg: RNNTrainConfig, epoch: int) -> float:
    """Validation loss with the averaged weights once ASGD runs; saves them when they are the best."""
    with averaged_weights(job.model, job.opt):
        val_loss = evaluate_lm(job.model, job.valid, cfg.bptt)
        if val_loss < job.best:
            job.best = val_loss
            ctx.save_extra(BEST_FILE, {"model": job.model.state_dict(), "epoch": epoch, "val_loss": val_loss})
    return val_loss


def _checkpoint(job: _Job, epoch: int) -> dict:
    """The end-of-epoch state that resume needs, as a plain dict."""
    return RNNState(
        model=job.model.state_dict(),
        optimizer=job.opt.state_dict(),
        rng=rng_state(),
        epoch=epoch,
        history=job.history,
        phase=job.phase,
        val_history=job.val_history,
        best=job.best,
    ).to_dict()


def _finish(ctx: JobContext, job: _Job, cfg: RNNTrainConfig, device: torch.device) -> TrainOutcome:
    """The exported model is the best validation epoch's (averaged, once ASGD runs) weights."""
    model, corpus = job.model, job.corpus
    model.load_state_dict(load_checkpoint(ctx.dir / BEST_FILE, map_location="cpu")["model"])
    test_loss = evaluate_lm(model, batchify(corpus.test, cfg.eval_batch_size, device), cfg.bptt)
    metrics = {**job.summary(), "test_perplexity": perplexity(test_loss)}
    model = model.eval().cpu()
    model.matmul_dtype = None  # the exported model is fp32
    tokens = corpus.valid[: cfg.bptt].view(-1, 1).cpu()
    return TrainOutcome(
        stopped=False,
        metrics=metrics,
        model=model,
        model_spec={"builder": RNN_BUILDER, "config": model_config(corpus.vocab_size, cfg)},
        example_inputs=(tokens, model.init_hidden(1)),
        input_names=("tokens", "hidden"),
        output_names=("log_probs", "hidden_out"),
        dynamic_batch=False,
        vocab=list(corpus.vocab),
    )


def _metrics(history: list[dict], cost: Cost, corpus: Corpus) -> dict:
    """The job's summary: best validation perplexity (the exported weights'), cost, pace."""
    out = {
        "params": cost.params,
        "flops": cost.flops,
        "data": corpus.name,
        "vocab": corpus.vocab_size,
        "epochs": len(history),
    }
    if history:
        best = min(history, key=lambda r: r["val_loss"])
        out.update(
            perplexity=best["val_ppl"],
            best_epoch=best["epoch"],
            last_perplexity=history[-1]["val_ppl"],
            train_loss=history[-1]["train_loss"],
            tokens_per_s=sum(r["throughput"] for r in history) / len(history),
        )
    return out
