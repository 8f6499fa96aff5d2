"""The paper's RNN proxy training: train one candidate language model from scratch on a
corpus and report its best validation perplexity.

The search compares candidates by this number, so the procedure is fixed and
deterministic: the same data_seed gives every candidate the same batch sequence, and on
CPU the same initial weights give the same result. Everything that can go wrong with one
candidate (divergence, NaN, a crash) becomes a TrainResult, never an exception, so one
bad DAG cannot stop a search.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from core.data.corpus import Corpus, batchify
from core.errors import one_line
from core.nets.bptt import perplexity, train_bptt_epoch
from core.nets.evaluate import evaluate_lm
from core.nets.rnn import RNNLanguageModel
from core.result import BUILD_FAILED, DIVERGED, MAX_EPOCHS, NAN, PATIENCE, USER_STOP, CandidateStatus, TrainResult

LR_DECAY = 0.1


@dataclass
class RNNProxyConfig:
    """Search-time training settings (docs/FIDELITY.md, RNN search)."""

    epochs: int = 10
    lr: float = 20.0
    clip: float = 0.25
    batch_size: int = 128
    bptt: int = 35
    patience: int = 4
    diverge_ratio: float = 3.0
    loss_momentum: float = 0.9  # EMA of batch train losses for the divergence rule
    max_loss: float = 30.0
    max_batches_per_epoch: int | None = None  # cap for demo/tests
    eval_batch_size: int = 10  # narrow columns: long context for validation
    max_eval_batches: int | None = None  # cap for demo/tests


def lr_at_epoch(cfg: RNNProxyConfig, epoch: int) -> float:
    """Learning rate of 1-based `epoch`. The official loop (searching/rnn/model.py) divides lr
    by 10 at the END of 0-based epochs E-4 and E-2, so 1-based epoch e runs at the reduced
    rate once e-1 > m for a milestone m. For E = 10: epochs 1-7 at lr, 8-9 at lr/10, 10 at
    lr/100. Negative milestones (E < 4) never fire, as `epoch == E - 4` never holds there."""
    drops = sum(1 for m in (cfg.epochs - 4, cfg.epochs - 2) if m >= 0 and epoch - 1 > m)
    return cfg.lr * LR_DECAY**drops


def _epoch_offsets(data_seed: int, bptt: int) -> Iterator[int]:
    """One first-window length per epoch, drawn only from data_seed: the same for every
    candidate of a search, whatever its architecture or how long it trains."""
    rng = random.Random(data_seed)
    while True:
        yield rng.randint(1, bptt)


class _UserStop(Exception):
    """Raised between batches when should_stop() says so; turned into a STOPPED result."""


def _train_epoch(
    model: RNNLanguageModel,
    opt: torch.optim.Optimizer,
    data: Tensor,
    cfg: RNNProxyConfig,
    offset: int,
    should_stop: Callable[[], bool] | None,
) -> tuple[float, float]:
    """One pass of the shared truncated BPTT (core.nets.bptt). Returns (token-weighted mean
    training loss, moving loss): the moving loss is the official EMA of the per-batch losses,
    restarted each epoch, which the divergence rule compares with."""
    out = train_bptt_epoch(
        model,
        opt,
        data,
        cfg.bptt,
        offset,
        cfg.clip,
        max_batches=cfg.max_batches_per_epoch,
        momentum=cfg.loss_momentum,
        should_stop=should_stop,
    )
    if out is None:
        raise _UserStop
    return out.mean, out.moving


def _run(
    model: RNNLanguageModel,
    corpus: Corpus,
    cfg: RNNProxyConfig,
    data_seed: int,
    device: torch.device | str,
    should_stop: Callable[[], bool] | None,
    on_epoch: Callable[[dict], None] | None,
    result: TrainResult,
) -> None:
    """The epoch loop; fills `result` in place so a stop or crash keeps the history so far."""
    model.to(device)
    train = batchify(corpus.train, cfg.batch_size, device)
    valid = batchify(corpus.valid, cfg.eval_batch_size, device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    offsets = _epoch_offsets(data_seed, cfg.bptt)
    best, since_best = math.inf, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        lr = lr_at_epoch(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        train_loss, moving_loss = _train_epoch(model, opt, train, cfg, next(offsets), should_stop)
        if not math.isfinite(train_loss):  # scored from the epochs before (train_rnn_proxy)
            result.stop_reason, result.error = NAN, f"training loss became {train_loss} in epoch {epoch}"
            return
        if should_stop is not None and should_stop():
            raise _UserStop
        val_loss = evaluate_lm(model, valid, cfg.bptt, cfg.max_eval_batches)
        result.history.append(_epoch_row(epoch, train_loss, moving_loss, val_loss, lr, time.perf_counter() - t0))
        result.epochs = epoch
        if on_epoch is not None:
            on_epoch(result.history[-1])
        best, since_best = (val_loss, 0) if val_loss < best else (best, since_best + 1)
        reason, error = _stop_rule(cfg, epoch, val_loss, moving_loss, since_best)
        if reason:
            result.stop_reason, result.error = reason, error
            return
    result.stop_reason = MAX_EPOCHS


def _epoch_row(epoch: int, train_loss: float, moving_loss: float, val_loss: float, lr: float, seconds: float) -> dict:
    """One epoch of the candidate's history, as the run store records it."""
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_ppl": perplexity(train_loss),
        "train_loss_ema": moving_loss,
        "val_loss": val_loss,
        "val_ppl": perplexity(val_loss),
        "lr": lr,
        "seconds": seconds,
    }


def _stop_rule(
    cfg: RNNProxyConfig, epoch: int, val_loss: float, moving_loss: float, since_best: int
) -> tuple[str, str]:
    """(stop reason, error) after an epoch, ("", "") to go on: a non-finite validation loss
    (recorded, but never the best: its `val_loss < best` was false), divergence against the
    EMA of the batch losses, or `patience` epochs without a new best."""
    if not math.isfinite(val_loss):
        return NAN, f"validation loss became {val_loss} in epoch {epoch}"
    if val_loss > cfg.diverge_ratio * moving_loss:
        return DIVERGED, ""
    if since_best >= cfg.patience:
        return PATIENCE, ""
    return "", ""


def _best_loss(result: TrainResult) -> float:
    """The best validation loss of the completed epochs (finite train and validation loss)."""
    losses = [r["val_loss"] for r in result.history if math.isfinite(r["val_loss"]) and math.isfinite(r["train_loss"])]
    return min(losses) if losses else math.nan


def train_rnn_proxy(
    model: RNNLanguageModel,
    corpus: Corpus,
    cfg: RNNProxyConfig,
    data_seed: int,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    precision: str = "fp32",
) -> TrainResult:
    """Train `model` (already initialised) with SGD + clipping + truncated BPTT and return
    perplexity = exp(best validation loss); NaN (FAILED) if that loss is >= max_loss, as the
    official `math.exp(best_val_loss) if best_val_loss < 30 else nan`. A NaN/inf loss stops
    training at once (stop reason NAN); as the official keeps `best_val_loss` from before it,
    the candidate is scored from its best completed epoch, and fails only if none completed.
    Stops early after `patience` epochs without a new best validation loss, or when
    validation loss > diverge_ratio x the EMA (0.9) of the epoch's batch losses. The lr is
    divided by 10 after epochs E-4 and E-2 (see lr_at_epoch). Torch's global RNG is forked and seeded
    with data_seed, so dropout (if any) is reproducible too and the
    caller's RNG state is left untouched."""
    result = TrainResult(status=CandidateStatus.OK)
    t0 = time.perf_counter()
    dev = torch.device(device)
    model.matmul_dtype = torch.bfloat16 if precision == "bf16" else None  # see RNNLanguageModel
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(data_seed)
        try:
            _run(model, corpus, cfg, data_seed, device, should_stop, on_epoch, result)
        except _UserStop:
            result.status, result.stop_reason = CandidateStatus.STOPPED, USER_STOP
        except Exception as exc:  # noqa: BLE001 (one bad candidate must not stop the search)
            result.status, result.stop_reason, result.error = CandidateStatus.FAILED, BUILD_FAILED, one_line(exc)
    result.wall_s = time.perf_counter() - t0
    best = _best_loss(result)
    if result.status == CandidateStatus.OK and not best < cfg.max_loss:
        result.status, result.stop_reason = CandidateStatus.FAILED, NAN
        result.error = (
            f"best validation loss {best:.3g} is not below {cfg.max_loss:g}"
            if math.isfinite(best)
            else result.error or "no epoch completed"
        )
    if result.status == CandidateStatus.FAILED:  # a failed candidate has no quality, whatever it reached
        result.perplexity = math.nan
    else:
        result.error = ""  # a NaN-stopped candidate that completed an epoch is scored, not failed
        if math.isfinite(best):
            result.perplexity = perplexity(best)
    return result
