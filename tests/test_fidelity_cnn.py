"""The official AutoShrink CNN proxy-estimator rules (docs/FIDELITY.md), one test per rule:
each fails if our code drifts from the rule it names (official searching/cnn/proxy_estimator.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.cell.genotype import Genotype
from core.nets.cnn import build_cnn, cnn_cost, proxy_config
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
    assert (stats.train_loss, stats.train_acc) == (1.5, 0.5)  # the epoch means, for the curves
    assert (stats.running_loss, stats.running_acc) == (r.loss, r.acc)
    assert Running(0.99).acc is None  # a new epoch starts afresh


def test_98_percent_rule_reads_the_ema() -> None:
    """Rule: `if moving_train_acc > 0.98: break`: a run of perfect batches after a bad one
    does not end the epoch until the EMA passes 98%."""
    r = Running(0.99)
    r.add(1.0, 0, 100)
    n = 0
    while r.acc <= ProxyTrainConfig().train_acc_stop:
        r.add(0.0, 100, 100)
        n += 1
    assert n == 390  # the cumulative mean would pass 98% after 50 batches


def test_divergence_compares_val_loss_with_3x_the_running_train_loss() -> None:
    cfg = ProxyTrainConfig()
    stats = EpochStats(train_loss=1.0, train_acc=0.5, val_loss=0.5, val_acc=0.5, running_loss=0.1, running_acc=0.5)
    assert stop_reason(cfg, 2, stats, best_epoch=2) == DIVERGED  # 0.5 > 3 x 0.1, though < 3 x 1.0


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
    cfg = ProxyTrainConfig(weight_decay=1e-2, shortcut_l2=3e-2)  # large, so a mistake shows
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


# ----- the proxy network (official searching/cnn/metagraph.py, util_concat.py, api/proto/contrib.py) -----
# A 4-node cell: node 3 concatenates nodes 1 and 2, and is the only leaf.
DIAMOND = Genotype("cnn", ("input", "sep3x3", "conv1x1", "sep3x3"), ((0, 1), (0, 2), (1, 3), (2, 3)))


def _conv(side: int, k: int, c_in: int, c_out: int) -> int:
    """Official Convolutional MACs: H x W (output) x k^2 x c_in x c_out."""
    return side * side * k * k * c_in * c_out


def _sep(side: int, c_in: int, c_out: int) -> int:
    """Official SeparableConv MACs: depthwise 3^2 x c_in x H x W plus pointwise c_in x c_out x H x W."""
    return 9 * c_in * side * side + c_in * c_out * side * side


def test_proxy_macs_follow_the_official_counter_by_hand() -> None:
    """Rule (api/network/tflayers): conv, separable and dense weights only; the shortcut's 1x1
    conv at the output size; BN (DISABLE_BATCHNORM_COUNT), pools, concat and add are free."""
    total = _conv(32, 3, 3, 32)  # stem 3 -> 32
    for side, c_in, width in ((32, 32, 16), (16, 16, 32), (8, 32, 64)):
        total += _sep(side, c_in, width) + _conv(side, 1, c_in, width)  # nodes 1 and 2
        total += _sep(side, 2 * width, width)  # node 3 on the concat of 1 and 2
        total += _conv(side, 1, c_in, width)  # shortcut c_in -> the leaf's width
    total += 64 * 10  # dense, no bias term
    assert total == 5_683_840
    assert cnn_cost(DIAMOND, proxy_config()).macs == total


def _layers(module: nn.Module) -> list[tuple]:
    """(type, key shape) of every leaf module, in order."""
    out = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            out.append(("conv", m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.groups))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(("bn", m.num_features))
        elif isinstance(m, (nn.ReLU, nn.Identity, nn.AdaptiveAvgPool2d)):
            out.append((type(m).__name__,))
        elif isinstance(m, nn.MaxPool2d):
            out.append(("maxpool", m.kernel_size, m.stride))
        elif isinstance(m, nn.Linear):
            out.append(("linear", m.in_features, m.out_features, m.bias is not None))
    return out


def test_proxy_network_structure_is_the_official_one() -> None:
    """Rule: stem conv3x3 32 s1 + BN + ReLU; three stages of one cell, node width 16 x (1, 2, 4),
    node 0 a 2x2 max-pool in stages 2 and 3 (`--pool 1 2 2`); sep3x3 = depthwise + BN + ReLU +
    pointwise + BN (+ ReLU, none on a leaf: linear bottleneck); conv1x1 + BN + ReLU; shortcut
    conv1x1 (stride) + BN where the shape changes; GAP, dense 10 with bias."""
    net = build_cnn(DIAMOND, proxy_config())
    assert _layers(net.stem) == [("conv", 3, 32, 3, 1, 1), ("bn", 32), ("ReLU",)]
    c_in = 32
    for cell, width, pooled in zip(net.cells, (16, 32, 64), (False, True, True)):
        assert _layers(cell.pool) == ([("maxpool", 2, 2)] if pooled else [("Identity",)])
        assert _layers(cell.ops["1"]) == [
            ("conv", c_in, c_in, 3, 1, c_in),
            ("bn", c_in),
            ("ReLU",),
            ("conv", c_in, width, 1, 1, 1),
            ("bn", width),
            ("ReLU",),
        ]
        assert _layers(cell.ops["2"]) == [("conv", c_in, width, 1, 1, 1), ("bn", width), ("ReLU",)]
        assert _layers(cell.ops["3"]) == [
            ("conv", 2 * width, 2 * width, 3, 1, 2 * width),
            ("bn", 2 * width),
            ("ReLU",),
            ("conv", 2 * width, width, 1, 1, 1),
            ("bn", width),
        ]
        assert _layers(cell.shortcut) == [("conv", c_in, width, 1, 2 if pooled else 1, 1), ("bn", width)]
        c_in = width
    assert _layers(net.head) == [("Identity",)]
    assert _layers(net.pool) + _layers(net.classifier) == [("AdaptiveAvgPool2d",), ("linear", 64, 10, True)]
    assert len(net.cells) == 3


def test_no_bias_in_stem_cell_ops_or_shortcut() -> None:
    """Rule: auto_shrink(use_bias=False) builds every cell op without bias, as the stem
    (Cifar10_header) and the shortcut (add.py); only the dense classifier has one."""
    net = build_cnn(Genotype.dense("cnn", 8, 0), proxy_config())
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.bias is None for m in convs)
    assert net.classifier.bias is not None


def test_cell_output_is_the_concat_of_its_leaves_plus_the_shortcut() -> None:
    """Rule (util_concat.convert_mask_to_proto): every node concatenates its inputs in ascending
    order; the cell output concatenates the leaves and adds the shortcut, no activation after."""
    two_leaves = Genotype("cnn", ("input", "conv1x1", "sep3x3"), ((0, 1), (0, 2)))
    joined = Genotype("cnn", two_leaves.ops, ((0, 1), (0, 2), (1, 2)))  # node 2 reads 0 and 1: one leaf
    torch.manual_seed(0)
    net = build_cnn(two_leaves, proxy_config()).eval()
    cell = net.cells[0]
    assert cell.c_out == 2 * 16 and net.cells[1].shortcut[0].in_channels == 32
    x = torch.randn(2, 32, 32, 32)
    with torch.no_grad():
        expected = torch.cat([cell.ops["1"](x), cell.ops["2"](x)], 1) + cell.shortcut(x)
        assert torch.equal(cell(x), expected) and (cell(x) < 0).any()  # no ReLU after the add
        chain = build_cnn(joined, proxy_config()).eval().cells[0]
        inner = chain.ops["2"](torch.cat([x, chain.ops["1"](x)], 1))  # node 2 reads nodes 0 and 1, in order
        # equal up to float rounding: the node sums its inputs' 1x1 convs rather than convolving their concat
        assert torch.allclose(chain(x), inner + chain.shortcut(x), rtol=1e-5, atol=1e-5)
