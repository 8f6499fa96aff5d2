"""RNN proxy training: it learns, it is reproducible, and every failure is a result."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from core.cell.genotype import Genotype
from core.data.batches import bptt_windows
from core.data.corpus import Corpus, load_corpus
from core.nets.rnn import RNNLanguageModel
from core.result import BUILD_FAILED, DIVERGED, MAX_EPOCHS, NAN, PATIENCE, USER_STOP, CandidateStatus
from core.search.proxy_rnn import RNNProxyConfig, lr_at_epoch, train_rnn_proxy

SHARED_PTB = Path(__file__).parents[1] / ".." / "shared" / "data" / "ptb-proxy"
GENOTYPE = Genotype.dense("rnn", 4, 0)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core box OpenMP spinning
    makes them 10x slower at random; restore the caller's setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def small() -> Corpus:
    """A slice of the embedded corpus with a 300-word vocabulary: real text, quick epochs."""
    c = load_corpus("embedded", max_vocab=300)
    return dataclasses.replace(c, train=c.train[:12_000], valid=c.valid[:1_500], test=c.test[:1_500])


def _model(vocab: int, seed: int = 0, width: int = 16) -> RNNLanguageModel:
    torch.manual_seed(seed)
    return RNNLanguageModel(GENOTYPE, vocab, emb=width, hidden=width)


def _cfg(**kw) -> RNNProxyConfig:
    base = dict(epochs=4, batch_size=32, max_batches_per_epoch=8)
    return RNNProxyConfig(**{**base, **kw})


def test_paper_defaults() -> None:
    cfg = RNNProxyConfig()
    assert (cfg.epochs, cfg.lr, cfg.clip, cfg.batch_size, cfg.bptt, cfg.patience, cfg.diverge_ratio, cfg.max_loss) == (
        10,
        20.0,
        0.25,
        128,
        35,
        4,
        3.0,
        30.0,
    )
    assert [lr_at_epoch(cfg, e) for e in range(1, 11)] == pytest.approx([20.0] * 7 + [2.0] * 2 + [0.2])
    assert [lr_at_epoch(RNNProxyConfig(epochs=3), e) for e in (1, 2, 3)] == pytest.approx([20.0, 20.0, 2.0])


def test_bptt_windows_cover_every_step_once() -> None:
    for offset in (1, 7, 35):
        spans = list(bptt_windows(100, 35, offset))
        assert spans[0] == (0, offset)
        covered = [t for s, n in spans for t in range(s, s + n)]
        assert covered == list(range(99))  # 100 steps give 99 (input, next-token) pairs


def test_validation_perplexity_falls_and_is_reproducible(small: Corpus) -> None:
    rows: list[dict] = []
    r = train_rnn_proxy(_model(small.vocab_size), small, _cfg(), data_seed=3, on_epoch=rows.append)
    assert r.status == CandidateStatus.OK and r.stop_reason == MAX_EPOCHS and r.epochs == 4 and r.error == ""
    assert rows == r.history and [h["epoch"] for h in r.history] == [1, 2, 3, 4]
    assert set(r.history[0]) == {
        "epoch",
        "train_loss",
        "train_ppl",
        "train_loss_ema",
        "val_loss",
        "val_ppl",
        "lr",
        "seconds",
    }
    first, best = r.history[0]["val_ppl"], min(h["val_ppl"] for h in r.history)
    assert best < 0.9 * first < small.vocab_size
    assert r.perplexity == pytest.approx(math.exp(min(h["val_loss"] for h in r.history)))
    assert [h["lr"] for h in r.history] == pytest.approx([20.0, 2.0, 2.0, 0.2])

    # reproducible: the first epoch again, bit for bit; another data_seed cuts windows differently
    again = train_rnn_proxy(_model(small.vocab_size), small, _cfg(epochs=1), data_seed=3)
    assert again.history[0]["val_loss"] == r.history[0]["val_loss"]
    assert again.history[0]["train_loss"] == r.history[0]["train_loss"]
    other = train_rnn_proxy(_model(small.vocab_size), small, _cfg(epochs=1), data_seed=1)
    assert other.history[0]["train_loss"] != r.history[0]["train_loss"]


def test_nan_loss_fails_with_nan_perplexity(small: Corpus) -> None:
    model = _model(small.vocab_size)
    with torch.no_grad():
        model.cell.w0[0, 0] = math.nan
    r = train_rnn_proxy(model, small, _cfg(), data_seed=0)
    assert (r.status, r.stop_reason) == (CandidateStatus.FAILED, NAN) and math.isnan(r.perplexity) and "nan" in r.error


@pytest.mark.parametrize("where", ["train", "valid"])
def test_nan_in_epoch_3_stops_and_scores_from_the_best_completed_epoch(small: Corpus, monkeypatch, where) -> None:
    """The official loop keeps best_val_loss from before the loss went non-finite: the
    candidate stops at its first NaN and is scored from epochs 1-2, not failed; the search
    can then choose it."""
    import core.search.proxy_rnn as proxy_rnn
    from core.result import Cost
    from core.search.candidates import make_record
    from core.search.loop import choose
    from core.search.tasks import RNNProxyTask

    calls = {"n": 0}
    if where == "train":  # 8 windows an epoch: the 17th loss is epoch 3's first
        real_loss = RNNLanguageModel.loss

        def loss(self, *args, **kw):
            calls["n"] += self.training  # training windows only (validation uses loss() too)
            value, hidden = real_loss(self, *args, **kw)
            return value * (math.nan if calls["n"] > 16 else 1.0), hidden

        monkeypatch.setattr(RNNLanguageModel, "loss", loss)
    else:
        real = proxy_rnn.evaluate_lm

        def evaluate_lm(*args, **kw):
            calls["n"] += 1
            return math.nan if calls["n"] >= 3 else real(*args, **kw)

        monkeypatch.setattr(proxy_rnn, "evaluate_lm", evaluate_lm)
    r = train_rnn_proxy(_model(small.vocab_size), small, _cfg(epochs=5), data_seed=0)
    assert (r.status, r.stop_reason, r.error) == (CandidateStatus.OK, NAN, "")
    completed = [h for h in r.history if math.isfinite(h["val_loss"])]
    assert [h["epoch"] for h in completed] == [1, 2] and len(r.history) == (2 if where == "train" else 3)
    assert r.perplexity == pytest.approx(math.exp(min(h["val_loss"] for h in completed)))

    cost = Cost(params=1, flops=10**6)
    score = object.__new__(RNNProxyTask).score  # the task's rule reads no settings or data: none loaded
    stopped = make_record(1, (0, (0, 1), GENOTYPE), r, cost, score(r, cost))
    failed_res = train_rnn_proxy(_model(small.vocab_size), small, _cfg(epochs=1, max_loss=1.0), data_seed=0)
    failed = make_record(1, (1, (0, 2), GENOTYPE), failed_res, cost, score(failed_res, cost))
    assert stopped.score is not None and failed.score is None and choose([failed, stopped]) is stopped


def test_nan_in_epoch_1_fails(small: Corpus, monkeypatch) -> None:
    real_loss = RNNLanguageModel.loss

    def loss(self, *args, **kw):
        value, hidden = real_loss(self, *args, **kw)
        return value * math.nan, hidden

    monkeypatch.setattr(RNNLanguageModel, "loss", loss)
    r = train_rnn_proxy(_model(small.vocab_size), small, _cfg(), data_seed=0)
    assert (r.status, r.stop_reason, r.history) == (CandidateStatus.FAILED, NAN, []) and math.isnan(r.perplexity)
    assert "epoch 1" in r.error


def test_best_loss_over_max_loss_fails(small: Corpus) -> None:
    r = train_rnn_proxy(_model(small.vocab_size), small, _cfg(epochs=1, max_loss=1.0), data_seed=0)
    assert (r.status, r.stop_reason) == (CandidateStatus.FAILED, NAN) and math.isnan(r.perplexity) and r.epochs == 1


def test_patience_and_divergence_stop_early(small: Corpus) -> None:
    frozen = train_rnn_proxy(_model(small.vocab_size), small, _cfg(lr=0.0, patience=2), data_seed=0)
    assert frozen.status == CandidateStatus.OK and frozen.stop_reason == PATIENCE and frozen.epochs == 3
    diverged = train_rnn_proxy(_model(small.vocab_size), small, _cfg(diverge_ratio=0.5), data_seed=0)
    assert diverged.status == CandidateStatus.OK and diverged.stop_reason == DIVERGED and diverged.epochs == 1
    assert math.isfinite(diverged.perplexity)


def test_user_stop_between_batches(small: Corpus) -> None:
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    r = train_rnn_proxy(_model(small.vocab_size), small, _cfg(), data_seed=0, should_stop=stop)
    assert (r.status, r.stop_reason, r.epochs) == (CandidateStatus.STOPPED, USER_STOP, 0)


def test_model_error_is_a_failed_result(small: Corpus) -> None:
    r = train_rnn_proxy(_model(small.vocab_size - 100), small, _cfg(), data_seed=0)
    assert (r.status, r.stop_reason) == (CandidateStatus.FAILED, BUILD_FAILED)
    assert r.error and "\n" not in r.error and math.isnan(r.perplexity)


@pytest.mark.skipif(not SHARED_PTB.is_dir(), reason="shared PTB proxy data not present at ../shared/data/ptb-proxy")
def test_one_epoch_on_shared_ptb_proxy() -> None:
    corpus = load_corpus(f"ptb:{SHARED_PTB}")
    cfg = RNNProxyConfig(epochs=1, batch_size=32, max_batches_per_epoch=6, max_eval_batches=20)
    r = train_rnn_proxy(_model(corpus.vocab_size, width=16), corpus, cfg, data_seed=0)
    assert r.status == CandidateStatus.OK and r.epochs == 1
    assert 1 < r.perplexity < corpus.vocab_size  # learnt something beyond uniform guessing
