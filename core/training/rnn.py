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
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from core.cell.genotype import Genotype
from core.data.batches import bptt_windows
from core.data.corpus import Corpus, batchify, load_corpus
from core.device import autocast_dtype, resolve_precision
from core.nets.evaluate import evaluate_lm
from core.nets.rnn import RNNLanguageModel, rnn_cost
from core.result import Cost
from core.seeds import derive_seed
from core.training.checkpoint import load_checkpoint, rng_state, set_rng_state
from core.training.config import RNNTrainConfig
from core.training.context import JobContext, TrainingDiverged, TrainOutcome, finite
from core.training.export import RNN_BUILDER

BEST_FILE = "best.pt"
SGD, ASGD = "sgd", "asgd"


def combined_input_dropout(cfg: RNNTrainConfig) -> float:
    """Embedding-input and input-x dropout as the one variational mask they amount to."""
    return 1.0 - (1.0 - cfg.dropout_i) * (1.0 - cfg.dropout_x)


def build_language_model(genotype: Genotype, vocab_size: int, cfg: RNNTrainConfig) -> RNNLanguageModel:
    return RNNLanguageModel(genotype, vocab_size, emb=cfg.emb, hidden=cfg.hidden, dropout=cfg.dropout,
                            dropout_h=cfg.dropout_h, dropout_x=combined_input_dropout(cfg),
                            dropout_e=cfg.dropout_e)


def model_config(vocab_size: int, cfg: RNNTrainConfig) -> dict:
    """The RNNLanguageModel keyword arguments (what the export's genotype JSON records)."""
    return {"vocab_size": vocab_size, "emb": cfg.emb, "hidden": cfg.hidden, "dropout": cfg.dropout,
            "dropout_h": cfg.dropout_h, "dropout_x": combined_input_dropout(cfg), "dropout_e": cfg.dropout_e}


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
    return cfg.asgd and len(val_history) > cfg.nonmono and val_loss > min(val_history[:-cfg.nonmono])


def _ppl(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf


def train_rnn(ctx: JobContext, genotype: Genotype, cfg: RNNTrainConfig, device: torch.device) -> TrainOutcome:
    """Train (or resume) the ShrinkRNN language model of `genotype` under `cfg`."""
    corpus = load_corpus(cfg.data, max_vocab=cfg.max_vocab or None, log=ctx.log)
    for note in corpus.notes:
        ctx.log(note)
    cost = rnn_cost(genotype, cfg.emb, cfg.hidden, corpus.vocab_size)
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_language_model(genotype, corpus.vocab_size, cfg).to(device)
    model.decoder_dtype = autocast_dtype(resolve_precision(cfg.precision, device))  # the decoder in bf16
    train = batchify(corpus.train, cfg.batch_size, device)
    valid = batchify(corpus.valid, cfg.eval_batch_size, device)
    windows = len(list(bptt_windows(train.size(0), cfg.bptt, cfg.bptt)))
    per_epoch = min(windows, cfg.max_batches) if cfg.max_batches else windows

    first, phase, history, val_history, best = 1, SGD, [], [], math.inf
    state = ctx.resume_state()
    if state is not None:
        phase = state["phase"]
        model.load_state_dict(state["model"])
        opt = make_optimizer(model, cfg, phase)
        opt.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        first, history = int(state["epoch"]) + 1, list(state["history"])
        val_history, best = [float(v) for v in state["val_history"]], float(state["best"])
    else:
        opt = make_optimizer(model, cfg, phase)
    ctx.log(f"{corpus.name}: vocabulary {corpus.vocab_size:,}, {corpus.train.numel():,} train tokens; "
            f"{cost.params:,} params, {cost.flops:,} cell FLOPs per step")
    ctx.begin(first, cfg.epochs, per_epoch)

    raw: list[Tensor] = []
    hook = model.cell.register_forward_hook(lambda _m, _i, out: raw.__setitem__(slice(None), [out[0]]))

    def summary() -> dict:
        return _metrics(history, cost, corpus)

    try:
        for epoch in range(first, cfg.epochs + 1):
            offset = random.Random(derive_seed(cfg.seed, "offset", epoch)).randint(1, cfg.bptt)
            t0 = time.perf_counter()
            result = _train_epoch(ctx, model, opt, train, cfg, epoch, offset, raw)
            if result is None:
                return TrainOutcome(stopped=True, metrics=summary())
            train_loss, tokens = result
            train_s = time.perf_counter() - t0
            if not finite(train_loss):
                raise TrainingDiverged(f"training loss became {train_loss} in epoch {epoch}; "
                                       f"lower the learning rate (now {cfg.lr:g})")
            ctx.progress(epoch, per_epoch, phase="validate", force=True)
            with averaged_weights(model, opt):
                val_loss = evaluate_lm(model, valid, cfg.bptt)
                if val_loss < best:
                    best = val_loss
                    ctx.save_extra(BEST_FILE, {"model": model.state_dict(), "epoch": epoch, "val_loss": val_loss})
            row = {"epoch": epoch, "train_loss": train_loss, "train_ppl": _ppl(train_loss), "val_loss": val_loss,
                   "val_ppl": _ppl(val_loss), "lr": cfg.lr, "throughput": tokens / train_s,
                   "seconds": time.perf_counter() - t0, "optimizer": phase}
            history.append(row)
            if phase == SGD and switch_to_asgd(cfg, val_history, val_loss):
                phase = ASGD
                opt = make_optimizer(model, cfg, ASGD)
                ctx.log(f"epoch {epoch}: validation stopped improving; switching to averaged SGD")
            val_history.append(val_loss)
            ctx.log(f"epoch {epoch}/{cfg.epochs}: train ppl {row['train_ppl']:.1f}, valid ppl "
                    f"{row['val_ppl']:.1f} ({row['optimizer']}), {row['throughput']:.0f} tokens/s")
            ctx.epoch_done(row, {"model": model.state_dict(), "optimizer": opt.state_dict(), "phase": phase,
                                 "rng": rng_state(), "epoch": epoch, "history": history,
                                 "val_history": val_history, "best": best})
    finally:
        hook.remove()

    # The exported model is the best validation epoch's (averaged, once ASGD runs) weights.
    model.load_state_dict(load_checkpoint(ctx.dir / BEST_FILE, map_location="cpu")["model"])
    test_loss = evaluate_lm(model, batchify(corpus.test, cfg.eval_batch_size, device), cfg.bptt)
    metrics = {**summary(), "test_perplexity": _ppl(test_loss)}
    model = model.eval().cpu()
    model.decoder_dtype = None  # the exported model is fp32
    tokens = corpus.valid[:cfg.bptt].view(-1, 1).cpu()
    return TrainOutcome(stopped=False, metrics=metrics, model=model,
                        model_spec={"builder": RNN_BUILDER,
                                    "config": model_config(corpus.vocab_size, cfg)},
                        example_inputs=(tokens, model.init_hidden(1)), input_names=("tokens", "hidden"),
                        output_names=("log_probs", "hidden_out"), dynamic_batch=False, vocab=list(corpus.vocab))


def _train_epoch(ctx: JobContext, model: RNNLanguageModel, opt: torch.optim.Optimizer, data: Tensor,
                 cfg: RNNTrainConfig, epoch: int, offset: int, raw: list[Tensor]) -> tuple[float, int] | None:
    """One pass of truncated BPTT with clipping and the slowness penalty; None if stopped.

    Returns the token-weighted mean cross-entropy (without the penalty, so it is comparable
    to validation) and the number of tokens trained on."""
    model.train()
    hidden = model.init_hidden(data.size(1))
    total = torch.zeros((), device=data.device)
    count = 0
    for n, (start, length) in enumerate(bptt_windows(data.size(0), cfg.bptt, offset)):
        if cfg.max_batches and n >= cfg.max_batches:
            break
        if ctx.should_stop():
            return None
        inputs, targets = data[start:start + length], data[start + 1:start + 1 + length]
        log_probs, hidden = model(inputs, hidden.detach())
        loss = F.nll_loss(log_probs.reshape(-1, log_probs.size(-1)), targets.reshape(-1))
        objective = loss
        if cfg.slowness > 0 and length > 1:
            states = raw[0]
            objective = loss + cfg.slowness * (states[1:] - states[:-1]).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        total += loss.detach() * targets.numel()
        count += targets.numel()
        ctx.progress(epoch, n + 1)
    return float(total) / max(count, 1), count


def _metrics(history: list[dict], cost: Cost, corpus: Corpus) -> dict:
    """The job's summary: best validation perplexity (the exported weights'), cost, pace."""
    out = {"params": cost.params, "flops": cost.flops, "data": corpus.name, "vocab": corpus.vocab_size,
           "epochs": len(history)}
    if history:
        best = min(history, key=lambda r: r["val_loss"])
        out.update(perplexity=best["val_ppl"], best_epoch=best["epoch"], last_perplexity=history[-1]["val_ppl"],
                   train_loss=history[-1]["train_loss"],
                   tokens_per_s=sum(r["throughput"] for r in history) / len(history))
    return out
