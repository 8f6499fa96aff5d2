"""The CNN search space: shapes for every kind of cell wiring, op semantics, and the cost anchors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.cell.genotype import Genotype, GenotypeError
from core.nets.cnn import Cell, CNNConfig, build_cnn, cifar_config, cnn_cost, cnn_summary, imagenet_config, proxy_config
from core.nets.cost import torchinfo_cost

SHRINK_EDGES = ((0, 1), (0, 2), (0, 3), (1, 3), (0, 4), (2, 4))
SHRINK = Genotype("cnn", ("input", "sep3x3", "sep3x3", "sep3x3", "conv1x1"), SHRINK_EDGES, "ShrinkCNN")
CHAIN = Genotype("cnn", ("input", "sep3x3", "conv1x1", "sep3x3"), ((0, 1), (1, 2), (2, 3)))
# nodes 2 and 3 are unreachable from 0 (edge 2-3 leaves an unreachable node); leaf is 4
UNREACHABLE = Genotype("cnn", ("input", "conv1x1", "sep3x3", "sep3x3", "conv1x1"), ((0, 1), (1, 4), (2, 3)))
# node 0 has no out-edge: the cell output is node 0 itself (plus the shortcut)
NO_OUT = Genotype("cnn", ("input", "sep3x3", "conv1x1"), ((1, 2),))
DENSE8 = Genotype.dense("cnn", 8, seed=0)

GENOTYPES = {"dense8": DENSE8, "shrink": SHRINK, "chain": CHAIN, "unreachable": UNREACHABLE, "no_out": NO_OUT}


def _cells(model: nn.Module) -> list[Cell]:
    return [m for m in model.modules() if isinstance(m, Cell)]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ----- shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GENOTYPES))
@pytest.mark.parametrize(
    "cfg",
    [proxy_config(), proxy_config(in_channels=1, input_size=8), cifar_config()],
    ids=["proxy32", "proxy8x1", "cifar"],
)
def test_forward_shape(name: str, cfg: CNNConfig) -> None:
    model = build_cnn(GENOTYPES[name], cfg)
    x = torch.randn(2, cfg.in_channels, cfg.input_size, cfg.input_size)
    out = model(x)
    assert out.shape == (2, cfg.num_classes)
    assert torch.isfinite(out).all()
    out.sum().backward()  # every built parameter is on the graph
    assert all(p.grad is not None for p in model.parameters())


def test_non_residual_forward_shape() -> None:
    cfg = CNNConfig(residual=False)
    model = build_cnn(SHRINK, cfg)
    assert all(isinstance(c.shortcut, nn.Identity) for c in _cells(model))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_rnn_genotype_rejected() -> None:
    with pytest.raises(GenotypeError):
        build_cnn(Genotype.dense("rnn", 4, seed=0), proxy_config())


# ----- cell structure ----------------------------------------------------------------------


def test_only_reachable_nodes_built() -> None:
    cell = _cells(build_cnn(UNREACHABLE, proxy_config()))[0]
    assert sorted(cell.ops.keys()) == ["1", "4"]
    assert cell.leaves == (4,)


def test_node0_without_out_edge_passes_input_through() -> None:
    cells = _cells(build_cnn(NO_OUT, proxy_config()))
    assert all(len(c.ops) == 0 and c.leaves == (0,) for c in cells)
    # channels are kept, so only the downsampling cells need a conv shortcut
    assert [isinstance(c.shortcut, nn.Identity) for c in cells] == [True, False, False]
    assert [c.c_out for c in cells] == [32, 32, 32]


def test_cell_widths_and_shortcuts() -> None:
    cells = _cells(build_cnn(SHRINK, proxy_config()))
    assert [c.c_out for c in cells] == [32, 64, 128]  # two leaves x node width 16/32/64
    assert isinstance(cells[0].shortcut, nn.Identity)  # stem 32 == 2 x 16, no pool
    for cell in cells[1:]:  # pooled cells: conv1x1 s2 + BN
        conv, bn = cell.shortcut
        assert conv.stride == (2, 2) and conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
    node3 = cells[0].ops["3"][0]  # sep3x3 on concat(n0, n1): 32 + 16
    assert node3.in_channels == 48 and node3.groups == 48


def test_convs_followed_by_bn_have_no_bias() -> None:
    model = build_cnn(DENSE8, proxy_config())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.bias is None for c in convs)


def _op_outputs(model: nn.Module, cell: Cell) -> dict[int, torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    hooks = [
        op.register_forward_hook(lambda m, i, o, j=int(j): seen.__setitem__(j, o.detach()))
        for j, op in cell.ops.items()
    ]
    model(torch.randn(4, 3, 32, 32))
    for h in hooks:
        h.remove()
    return seen


def test_leaf_ops_linear_inner_ops_activated() -> None:
    model = build_cnn(SHRINK, proxy_config())
    cell = _cells(model)[0]
    out = _op_outputs(model, cell)
    assert out[1].min() >= 0 and out[2].min() >= 0  # inner: ReLU
    assert out[3].min() < 0 and out[4].min() < 0  # leaves: linear (BN output)
    assert isinstance(cell.ops["3"][-1], nn.BatchNorm2d)
    assert isinstance(cell.ops["1"][-1], nn.ReLU)


def test_leaf_ops_activated_without_residual() -> None:
    model = build_cnn(SHRINK, CNNConfig(residual=False))
    out = _op_outputs(model, _cells(model)[0])
    assert all(t.min() >= 0 for t in out.values())


def test_swish_throughout() -> None:
    model = build_cnn(SHRINK, imagenet_config("swish"))
    kinds = {type(m) for m in model.modules()}
    assert nn.SiLU in kinds and nn.ReLU not in kinds


# ----- configs -------------------------------------------------------------------------


def test_proxy_config_matches_spec() -> None:
    cfg = proxy_config()
    assert (cfg.stem_channels, cfg.stem_stride, cfg.widths, cfg.pools, cfg.head_channels) == (
        32,
        1,
        (16, 32, 64),
        (False, True, True),
        0,
    )
    assert proxy_config(base_width=10).widths == (12, 20, 40)  # multiples of 4


def test_width_multiplier_scales_stem_widths_head() -> None:
    cfg = cifar_config(width_multiplier=0.5)
    assert cfg.stage_widths() == (12, 24, 48) and cfg.stem_width() == 16
    assert CNNConfig(head_channels=100, width_multiplier=1.5).head_width() == 150
    assert cnn_cost(SHRINK, cfg).params < cnn_cost(SHRINK, cifar_config()).params


def test_config_json_round_trip() -> None:
    cfg = imagenet_config("swish")
    again = CNNConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"activation": "tanh"},
        {"widths": [16, 32]},
        {"stem_stride": 0},
        {"input_size": 2},
        {"width_multiplier": 0},
        {"colour": 1},
        {"pools": [1, 0, 0]},
        {"head_channels": -1},
    ],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError) as info:
        CNNConfig.from_dict({**proxy_config().to_dict(), **bad})
    assert "\n" not in str(info.value)


# ----- cost ---------------------------------------------------------------------------


def test_cost_counting_rule_by_hand() -> None:
    """Stem conv 1->4 3x3 on 4x4, one conv1x1 node 4->4, linear 4->2: BN adds params, never MACs,
    and biases are params but not MACs (the official counter: dense MACs = in x units)."""
    cfg = CNNConfig(
        in_channels=1, num_classes=2, input_size=4, stem_channels=4, widths=(4,), cells_per_stage=(1,), pools=(False,)
    )
    cost = cnn_cost(Genotype("cnn", ("input", "conv1x1"), ((0, 1),)), cfg)
    assert cost.params == 36 + 8 + 16 + 8 + 10
    assert cost.macs == 36 * 16 + 16 * 16 + 8


@pytest.mark.parametrize("activation", ["relu", "swish"])
def test_shrinkcnn_imagenet_cost_matches_paper(activation: str) -> None:
    cost = cnn_cost(SHRINK, imagenet_config(activation))
    assert abs(cost.params / 3.64e6 - 1) < 0.02, cost
    assert abs(cost.macs / 383.7e6 - 1) < 0.03, cost


def test_cost_leaves_model_mode_alone() -> None:
    model = build_cnn(SHRINK, proxy_config())
    model.train()
    model.cells[1].eval()  # a mixed state, which torchinfo alone would flatten
    before = [m.training for m in model.modules()]
    cost = torchinfo_cost(model, (3, 32, 32))
    assert [m.training for m in model.modules()] == before
    assert next(model.parameters()).device.type == "cpu"
    model.eval()
    torchinfo_cost(model, (3, 32, 32))
    assert not any(m.training for m in model.modules())
    assert cost.params == sum(p.numel() for p in model.parameters())


def test_summary_text() -> None:
    text = cnn_summary(CHAIN, proxy_config())
    assert "Conv2d" in text and "Total params" in text


def test_node_ops_by_parts_train_as_the_concat_does() -> None:
    """A node computed part by part (no concat) is the node on the concat of its inputs: the same
    outputs, gradients, BN running statistics and batch counts, to float64 rounding."""
    import copy

    from core.nets.cnn import NodeOp

    torch.manual_seed(0)
    parts_net = build_cnn(DENSE8, proxy_config(scales=(1, 2))).double()
    whole_net = copy.deepcopy(parts_net)
    for m in whole_net.modules():
        if isinstance(m, NodeOp):
            m.by_parts = False
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    for net in (parts_net, whole_net):
        net(x).square().sum().backward()
    assert torch.allclose(parts_net(x), whole_net(x), rtol=1e-9, atol=1e-9)
    grads = dict(whole_net.named_parameters())
    for name, p in parts_net.named_parameters():
        assert torch.allclose(p.grad, grads[name].grad, rtol=1e-9, atol=1e-9), name
    buffers = dict(whole_net.named_buffers())
    for name, b in parts_net.named_buffers():
        assert torch.allclose(b.double(), buffers[name].double(), rtol=1e-9, atol=1e-12), name
    assert parts_net.cells[0].ops["7"][1].num_batches_tracked.item() == 2
