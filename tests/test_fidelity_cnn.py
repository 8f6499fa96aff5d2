"""The official AutoShrink CNN proxy-estimator rules (docs/FIDELITY.md), one test per rule:
each fails if our code drifts from the rule it names (official searching/cnn/proxy_estimator.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.cell.genotype import Genotype
from core.nets.cnn import build_cnn, proxy_config
from core.result import DIVERGED, LOW_ACCURACY
from core.search.config import preset_config
from core.search.proxy_cnn import EpochStats, ProxyTrainConfig, Running, adam_groups, l2_coefficients, stop_reason


def test_running_accuracy_and_loss_are_ema_099_restarted_each_epoch() -> None:
    """Rule: moving = 0.99 x moving + 0.01 x batch value, the first batch of an epoch sets it."""
    r = Running(ProxyTrainConfig().momentum)
    r.add(2.0, 0, 10)
    assert (r.loss, r.acc) == (2.0, 0.0)
    r.add(1.0, 10, 10)
    assert r.loss == pytest.approx(0.99 * 2.0 + 0.01 * 1.0) and r.acc == pytest.approx(0.01)
    stats = r.stats(val_loss=3.0, val_acc=0.5)
    assert (stats.train_loss, stats.train_acc) == (1.5, 0.5)        # the epoch means, for the curves
    assert (stats.running_loss, stats.running_acc) == (r.loss, r.acc)
    assert Running(0.99).acc is None                                 # a new epoch starts afresh


def test_98_percent_rule_reads_the_ema() -> None:
    """Rule: `if moving_train_acc > 0.98: break`: a run of perfect batches after a bad one
    does not end the epoch until the EMA passes 98%."""
    r = Running(0.99)
    r.add(1.0, 0, 100)
    n = 0
    while r.acc <= ProxyTrainConfig().train_acc_stop:
        r.add(0.0, 100, 100)
        n += 1
    assert n == 390                        # the cumulative mean would pass 98% after 50 batches


def test_divergence_compares_val_loss_with_3x_the_running_train_loss() -> None:
    cfg = ProxyTrainConfig()
    stats = EpochStats(train_loss=1.0, train_acc=0.5, val_loss=0.5, val_acc=0.5, running_loss=0.1, running_acc=0.5)
    assert stop_reason(cfg, 2, stats, best_epoch=2) == DIVERGED        # 0.5 > 3 x 0.1, though < 3 x 1.0


def test_low_accuracy_rule_fires_at_the_4th_epoch_only() -> None:
    cfg = ProxyTrainConfig()
    low = EpochStats(1.0, 0.1, 1.0, 0.1, 1.0, 0.1)
    assert [stop_reason(cfg, e, low, best_epoch=e) for e in (3, 4, 5)] == [None, LOW_ACCURACY, None]


def test_l2_is_keras_style_on_conv_pointwise_dense_kernels_only() -> None:
    """Rule: loss + 1e-5 x sum(w^2) over conv, pointwise and dense kernels (stem included); no
    L2 on depthwise kernels, BN or biases; the shortcut 1x1 conv at the library default 4e-5."""
    model = build_cnn(Genotype.dense("cnn", 4, 0), proxy_config())
    cfg = ProxyTrainConfig()
    coef = l2_coefficients(model, cfg)
    kinds: dict[float, set[str]] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Conv2d):
            kind = "shortcut" if ".shortcut." in name else "depthwise" if mod.groups > 1 else "conv"
            kinds.setdefault(coef[f"{name}.weight"], set()).add(kind)
    assert kinds == {1e-5: {"conv"}, 0.0: {"depthwise"}, 4e-5: {"shortcut"}}
    assert coef["stem.0.weight"] == 1e-5 and coef["classifier.weight"] == 1e-5 and coef["classifier.bias"] == 0
    bn = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(coef[f"{n}.weight"] == coef[f"{n}.bias"] == 0 for n in bn)
    assert preset_config("cnn", "paper").weight_decay == 1e-5


def test_decay_groups_realise_the_keras_l2_loss() -> None:
    """The decay groups add exactly the gradient of sum(lambda x w^2) (the Keras loss term).
    Checked with SGD, which reads a group's weight_decay as Adam does (grad + wd x p), because
    Adam's first steps are nearly sign(grad) and would hide a wrong coefficient."""
    torch.manual_seed(0)
    g = Genotype.dense("cnn", 4, 0)
    cfg = ProxyTrainConfig(weight_decay=1e-2, shortcut_l2=3e-2)   # large, so a mistake shows
    net = proxy_config(in_channels=1, input_size=8, stem_channels=8, base_width=4)
    a = build_cnn(g, net)
    b = build_cnn(g, net)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    opt_a = torch.optim.SGD(adam_groups(a, cfg), lr=0.1)
    F.cross_entropy(a(x), y).backward()
    opt_a.step()
    coef = l2_coefficients(b, cfg)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    loss = F.cross_entropy(b(x), y) + sum(coef[n] * p.pow(2).sum() for n, p in b.named_parameters())
    loss.backward()
    opt_b.step()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), n
