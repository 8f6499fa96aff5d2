"""ShrinkRNN final training: it learns on the embedded corpus, the paper's settings are one
schedule away, the SGD -> averaged-SGD switch works, and stop + resume (dropout masks
included) is exact."""

import math
import threading

import pytest
import torch

import core.training.rnn as final_rnn
from core.cell.presets import load_preset
from core.store.jobs import JobStore
from core.store.runs import RunStatus
from core.training.config import train_config
from core.training.context import JobObserver
from core.training.engine import create_job, run_job
from core.training.rnn import averaged_weights, build_language_model, combined_input_dropout, switch_to_asgd

CELL = load_preset("shrinkrnn")
TINY = dict(emb=32, hidden=32, max_vocab=500, batch_size=32, bptt=20, threads=1, onnx=False)


def _run(store: JobStore, observer=None, stop=None, job=None, **settings) -> int:
    if job is None:
        job = create_job(store, CELL, train_config("rnn", "demo", **{**TINY, **settings}), "test")
    run_job(store, job, observer, stop)
    return job


def test_paper_settings_are_one_schedule_away():
    cfg = train_config("rnn", "paper")
    assert (cfg.emb, cfg.hidden, cfg.data, cfg.epochs) == (745, 745, "ptb", 3000)
    assert (cfg.dropout, cfg.dropout_h, cfg.dropout_x, cfg.dropout_i, cfg.dropout_e) == (0.75, 0.25, 0.75, 0.2, 0.1)
    assert (cfg.weight_decay, cfg.slowness, cfg.batch_size, cfg.bptt, cfg.lr, cfg.asgd) == (
        8e-7,
        1e-3,
        64,
        35,
        20.0,
        True,
    )
    demo = train_config("rnn")
    assert (demo.dropout, demo.weight_decay, demo.slowness) == (cfg.dropout, cfg.weight_decay, cfg.slowness)


def test_embedding_input_and_input_x_dropout_make_one_mask():
    cfg = train_config("rnn")
    assert combined_input_dropout(cfg) == pytest.approx(1 - 0.8 * 0.25)
    model = build_language_model(CELL, 50, train_config("rnn", emb=8, hidden=8))
    assert model.cell.dropout_x == pytest.approx(0.8) and model.dropout == 0.75 and model.dropout_e == 0.1


def test_validation_perplexity_falls_over_a_few_hundred_steps(store_path):
    """Dropouts lighter than the paper's: a 32-wide model under 75% output dropout learns
    too slowly for a test, and the point here is that training works."""
    store = JobStore(store_path)
    job = _run(store, epochs=4, dropout=0.3, dropout_x=0.3, dropout_i=0.1, dropout_h=0.1)  # 4 x 70 windows
    rows, rec = store.epochs(job), store.get_job(job)
    assert rec.status == RunStatus.FINISHED, rec.error
    assert rows[0].val_ppl < 500 / 3  # far below a uniform guess over the vocabulary
    assert rows[-1].val_ppl < 0.85 * rows[0].val_ppl and rows[-1].train_loss < rows[0].train_loss
    assert rec.metrics["perplexity"] == min(r.val_ppl for r in rows)
    assert math.isfinite(rec.metrics["test_perplexity"]) and rec.metrics["tokens_per_s"] > 0
    assert all(r.extra["optimizer"] == "sgd" and r.lr == 20.0 for r in rows)


def test_switch_rule_is_non_monotone():
    cfg = train_config("rnn", nonmono=2)
    assert not switch_to_asgd(cfg, [5.0, 4.0], 4.5)  # too little history
    assert not switch_to_asgd(cfg, [5.0, 4.0, 3.0], 4.5)  # better than the best before the last 2
    assert switch_to_asgd(cfg, [5.0, 4.0, 3.0], 5.5)
    assert not switch_to_asgd(train_config("rnn", nonmono=2, asgd=False), [5.0, 4.0, 3.0], 5.5)


def test_averaged_weights_are_swapped_in_and_back():
    torch.manual_seed(0)
    model = build_language_model(CELL, 20, train_config("rnn", emb=4, hidden=4))
    opt = torch.optim.ASGD(model.parameters(), lr=1.0, t0=0, lambd=0.0)
    for _ in range(3):
        tokens = torch.randint(0, 20, (5, 2))
        out, _ = model(tokens, model.init_hidden(2))
        opt.zero_grad()
        out.mean().backward()
        opt.step()
    p = model.decoder_bias
    current = p.detach().clone()
    with averaged_weights(model, opt):
        assert torch.equal(p, opt.state[p]["ax"]) and not torch.equal(p, current)
    assert torch.equal(p, current)


def test_stop_and_resume_after_the_switch_to_asgd_is_exact(store_path, monkeypatch):
    """Forced switch after epoch 1, so the resumed part runs averaged SGD from saved state;
    the output and word dropouts draw from torch's RNG, restored from the checkpoint."""
    monkeypatch.setattr(final_rnn, "switch_to_asgd", lambda cfg, hist, loss: True)
    store = JobStore(store_path)
    settings = dict(epochs=3, max_batches=15)
    stop = threading.Event()

    class StopAfterSecondEpoch(JobObserver):
        def on_epoch(self, job_id, row):
            if row["epoch"] == 2:
                stop.set()

    job = _run(store, StopAfterSecondEpoch(), stop, **settings)
    assert store.get_job(job).status == RunStatus.STOPPED and len(store.epochs(job)) == 2
    torch.manual_seed(123)  # whatever the process did in between
    _run(store, job=job)
    fresh = _run(store, **settings)
    cols = ("train_loss", "val_loss", "val_ppl")
    resumed_rows = [[getattr(r, c) for c in cols] + [r.extra["optimizer"]] for r in store.epochs(job)]
    assert resumed_rows == [[getattr(r, c) for c in cols] + [r.extra["optimizer"]] for r in store.epochs(fresh)]
    assert [r[-1] for r in resumed_rows] == ["sgd", "asgd", "asgd"]
    assert store.get_job(job).metrics["test_perplexity"] == store.get_job(fresh).metrics["test_perplexity"]
