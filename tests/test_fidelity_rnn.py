"""The official AutoShrink RNN search rules (docs/FIDELITY.md), one test per rule: each fails
if our code drifts from the rule it names."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import PTB_DIR, needs

from core.cell.genotype import CNN_OPS, RNN_OPS, Genotype
from core.data.corpus import EOS, CorpusError, load_corpus
from core.nets.rnn import RNNLanguageModel
from core.search import proxy_rnn
from core.search.config import preset_config
from core.search.proxy_rnn import RNNProxyConfig, lr_at_epoch


def _write_ptb(d: Path, lines: dict[str, int]) -> Path:
    """A PTB-format folder whose line i of split s is 's<i> w<i%7>' (one new word per line)."""
    d.mkdir(parents=True)
    for split, n in lines.items():
        (d / f"ptb.{split}.txt").write_text("".join(f" {split}{i} w{i % 7} \n" for i in range(n)))
    return d


# ----- proxy data ------------------------------------------------------------------------
def test_ptb_proxy_takes_first_4000_300_300_lines_and_one_dictionary(tmp_path: Path) -> None:
    """Rule: proxy = first 4,000 / 300 / 300 lines of PTB train / valid / test; dictionary over
    all three files in order of first appearance (official data/penn_proxy + data.Corpus)."""
    d = _write_ptb(tmp_path / "ptb", {"train": 4010, "valid": 305, "test": 303})
    c = load_corpus(f"ptb-proxy:{d}")
    assert c.train.numel() == 4000 * 3 and c.valid.numel() == 300 * 3 and c.test.numel() == 300 * 3
    words = [c.vocab[i] for i in c.train[:6].tolist()]
    assert words == ["train0", "w0", EOS, "train1", "w1", EOS]
    assert "train3999" in c.vocab and "train4000" not in c.vocab
    assert "valid299" in c.vocab and "test299" in c.vocab and "test300" not in c.vocab
    assert c.vocab_size == 4000 + 7 + 1 + 300 + 300  # no word of valid/test is <unk>
    assert c.vocab.index("valid0") < c.vocab.index("test0")
    with pytest.raises(CorpusError, match="full dictionary"):
        load_corpus(f"ptb-proxy:{d}", max_vocab=100)


def test_ptb_proxy_spec_derives_from_the_ptb_download(tmp_path: Path) -> None:
    """`ptb-proxy` cuts the proxy from the cached `ptb` download (files present: no network)."""
    _write_ptb(tmp_path / "ptb", {"train": 4100, "valid": 400, "test": 400})
    c = load_corpus("ptb-proxy", cache_dir=tmp_path)
    assert (c.train.numel(), c.valid.numel(), c.test.numel()) == (12_000, 900, 900) and c.name == "ptb-proxy"


@needs(PTB_DIR, "the PTB proxy")
def test_shared_ptb_proxy_has_the_official_counts() -> None:
    c = load_corpus(f"ptb-proxy:{PTB_DIR}")
    assert (c.vocab_size, c.train.numel(), c.valid.numel(), c.test.numel()) == (7002, 88_832, 7_060, 6_642)


def test_paper_rnn_preset_searches_the_ptb_proxy() -> None:
    cfg = preset_config("rnn", "paper")
    assert cfg.data == "ptb-proxy"
    assert (
        cfg.nodes,
        cfg.k,
        cfg.epochs,
        cfg.keep_fraction,
        cfg.lr,
        cfg.clip,
        cfg.batch_size,
        cfg.bptt,
        cfg.emb,
        cfg.hidden,
        cfg.weight_decay,
    ) == (6, 10, 10, 0.25, 20.0, 0.25, 128, 35, 100, 100, 0.0)


# ----- op assignment ---------------------------------------------------------------------
def test_rnn_ops_are_independent_uniform_seeded_draws() -> None:
    """Rule: each RNN node's op is an independent uniform draw from {relu, sigmoid, tanh,
    identity} (official random_choose_ops); seeded here."""
    assert set(RNN_OPS) == {"relu", "sigmoid", "tanh", "identity"}
    cells = [Genotype.dense("rnn", 6, seed=s).ops for s in range(400)]
    assert Genotype.dense("rnn", 6, seed=7).ops == cells[7]
    shares = Counter(op for ops in cells for op in ops)
    assert all(0.2 < shares[op] / (6 * 400) < 0.3 for op in RNN_OPS)
    multisets = Counter(tuple(sorted(ops)) for ops in cells)
    assert tuple(sorted(("tanh", "identity", "sigmoid", "sigmoid", "tanh", "identity"))) in multisets
    assert any(len(set(ops)) < 3 for ops in cells)  # equal shares would always give >= 3 ops


def test_cnn_ops_keep_equal_shares() -> None:
    """Rule: CNN ops in equal shares, shuffled (official ops_gen.py)."""
    for s in range(20):
        assert Counter(Genotype.dense("cnn", 8, seed=s).ops) == {op: 4 for op in CNN_OPS}


# ----- LR schedule and stopping -----------------------------------------------------------
def test_lr_divided_by_10_after_0_based_epochs_e4_and_e2() -> None:
    """Rule: `if epoch == epoch_num - 4 or epoch == epoch_num - 2: lr /= 10` after the epoch."""
    assert [lr_at_epoch(RNNProxyConfig(), e) for e in range(1, 11)] == pytest.approx([20.0] * 7 + [2.0] * 2 + [0.2])
    assert [lr_at_epoch(RNNProxyConfig(epochs=4), e) for e in range(1, 5)] == pytest.approx([20.0, 2.0, 2.0, 0.2])


def test_divergence_compares_with_ema_09_of_batch_losses(monkeypatch) -> None:
    """Rule: the train loss of the 3x divergence rule is the EMA (momentum 0.9) of the batch
    losses, restarted each epoch (official model.py train())."""
    seen: list[float] = []
    real = RNNLanguageModel.loss

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out[0].item())
        return out

    monkeypatch.setattr(RNNLanguageModel, "loss", spy)
    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), 50, emb=8, hidden=8)
    data = torch.randint(0, 50, (200, 4))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    cfg = RNNProxyConfig(bptt=10)
    mean, moving = proxy_rnn._train_epoch(model, opt, data, cfg, 10, None)
    ema = seen[0]
    for v in seen[1:]:
        ema = 0.9 * ema + 0.1 * v
    assert len(seen) > 5 and moving == pytest.approx(ema) and not math.isclose(moving, mean)
    assert cfg.diverge_ratio == 3.0 and cfg.loss_momentum == 0.9 and cfg.patience == 4


# ----- final training ----------------------------------------------------------------------
def test_hidden_dropout_mask_applies_to_every_edge_input() -> None:
    """Rule: final training masks the source state of every edge (`(s_prev * h_mask) @ W_ij`,
    official model.py), with the highway term on the unmasked state."""
    from core.nets.rnn import DagRNNCell

    torch.manual_seed(0)
    cell = DagRNNCell(Genotype("rnn", ("tanh", "tanh", "tanh"), ((0, 1), (1, 2))), 4, 4)
    xw, h_prev = torch.randn(2, 8), torch.randn(2, 4)
    zero = torch.zeros(2, 4)
    s0 = cell._node0(xw, h_prev, zero)
    s1 = s0 + 0.5 * (torch.tanh(torch.zeros(())) - s0)  # masked input: pre-activations 0
    s2 = s1 + 0.5 * (0 - s1)
    assert torch.allclose(cell._cell(xw, h_prev, zero), s2)
    assert not torch.allclose(cell._cell(xw, h_prev, None), s2)


# ----- embedding init ----------------------------------------------------------------------
def test_glove_init_copies_vectors_and_draws_u05_for_missing_words(tmp_path: Path) -> None:
    """Rule: GloVe vectors copied into the embedding, U(-0.5, 0.5) for words without one, the
    same tensor for every candidate (official build_emb / build_weight); text only, no pickle."""
    from core.data.glove import GloveError, glove_embedding
    from core.search.tasks import make_task

    d = _write_ptb(tmp_path / "ptb", {"train": 40, "valid": 5, "test": 5})
    glove = tmp_path / "glove.txt"
    glove.write_text("w1 " + " ".join(["0.25"] * 8) + "\nzzz " + " ".join(["9"] * 8) + "\n")
    cfg = preset_config(
        "rnn", "demo", data=f"ptb-proxy:{d}", max_vocab=0, emb=8, hidden=8, embedding_init=f"glove:{glove}"
    )
    logs: list[str] = []
    task = make_task(cfg, torch.device("cpu"), logs.append)
    vocab = task.corpus.vocab
    a, b = task.build(Genotype.dense("rnn", 5, 0), 1), task.build(Genotype.dense("rnn", 5, 0), 2)
    emb = a.encoder.weight.detach()
    assert torch.equal(emb, b.encoder.weight.detach())  # the same for every candidate
    assert torch.equal(emb[vocab.index("w1")], torch.full((8,), 0.25))
    others = torch.cat([emb[: vocab.index("w1")], emb[vocab.index("w1") + 1 :]])
    assert others.abs().max() <= 0.5 and others.abs().max() > 0.3  # U(-0.5, 0.5), not U(-0.1, 0.1)
    assert any("GloVe" in m and f"1 of {len(vocab)}" in m for m in logs)
    assert task.cfg.to_dict()["embedding_init"] == f"glove:{glove}"  # stored with the run's config
    emb2, _ = glove_embedding(glove, vocab, 8, cfg.seed)
    assert torch.equal(emb2, emb)
    with pytest.raises(GloveError, match="expected 4"):
        glove_embedding(glove, vocab, 4, 0)
    (tmp_path / "w2v.pkl").write_bytes(b"\x80\x04\x95\xff\xfe\x00")
    with pytest.raises(GloveError, match="not UTF-8"):
        glove_embedding(tmp_path / "w2v.pkl", vocab, 8, 0)
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="embedding init"):
        preset_config("rnn", "paper", embedding_init="w2v.pkl")
