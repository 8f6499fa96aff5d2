"""The RNN cell and language model against the spec's equations, computed here by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from core.cell.genotype import Genotype
from core.nets.rnn import DagRNNCell, RNNLanguageModel, rnn_cost

ASSETS = Path(__file__).parents[1] / "assets"
ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a shared 2-core box OpenMP spinning
    makes timings erratic; restore the caller's setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _known(rows: int, cols: int, scale: float) -> torch.Tensor:
    """A small fixed matrix with mixed signs, so every activation sees both sides of zero."""
    return (torch.linspace(-1.0, 1.0, rows * cols) * scale).view(rows, cols).flip(1) + 0.05 * torch.arange(
        rows * cols, dtype=torch.float32
    ).view(rows, cols).remainder(3)


def _reference_step(genotype: Genotype, cell: DagRNNCell, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The spec's equations, written out plainly: node by node, edge by edge."""
    g = genotype.pruned()
    e, n = cell.emb, cell.hidden
    pre0 = torch.cat([x, h], dim=1) @ cell.w0
    c0, g0 = torch.sigmoid(pre0[:, :n]), torch.tanh(pre0[:, n:])
    states = {0: h + c0 * (g0 - h)}
    for j in sorted(g.reachable() - {0}):
        contributions = []
        for i in g.inputs(j):
            pre = states[i] @ cell.edge_weight(i, j)
            c, gj = torch.sigmoid(pre[:, :n]), ACT[g.ops[j]](pre[:, n:])
            contributions.append(states[i] + c * (gj - states[i]))
        states[j] = sum(contributions) / len(contributions)
    assert e == x.size(1)
    return sum(states[j] for j in g.leaves()) / len(g.leaves())


def test_three_node_step_matches_hand_computation() -> None:
    g = Genotype("rnn", ("tanh", "relu", "sigmoid"), ((0, 1), (0, 2), (1, 2)))
    e, h = 3, 2
    cell = DagRNNCell(g, e, h)
    w0, w01, w02, w12 = _known(e + h, 2 * h, 0.9), _known(h, 2 * h, 1.2), _known(h, 2 * h, -0.7), _known(h, 2 * h, 1.5)
    with torch.no_grad():
        cell.w0.copy_(w0)
        cell.edge_weight(0, 1).copy_(w01)
        cell.edge_weight(0, 2).copy_(w02)
        cell.edge_weight(1, 2).copy_(w12)
    x = torch.tensor([[0.5, -1.0, 0.25], [1.5, 0.0, -0.5]])
    hp = torch.tensor([[0.3, -0.2], [-0.6, 0.9]])

    pre0 = torch.cat([x, hp], 1) @ w0  # node 0: [c0, g0] = [x, h] W0
    s0 = hp + torch.sigmoid(pre0[:, :2]) * (torch.tanh(pre0[:, 2:]) - hp)
    p01 = s0 @ w01  # edge 0->1, node 1 is relu
    s1 = s0 + torch.sigmoid(p01[:, :2]) * (torch.relu(p01[:, 2:]) - s0)
    p02, p12 = s0 @ w02, s1 @ w12  # edges into node 2 (sigmoid)
    k02 = s0 + torch.sigmoid(p02[:, :2]) * (torch.sigmoid(p02[:, 2:]) - s0)
    k12 = s1 + torch.sigmoid(p12[:, :2]) * (torch.sigmoid(p12[:, 2:]) - s1)
    s2 = (k02 + k12) / 2  # mean of incoming contributions
    expected = s2  # node 2 is the only leaf

    assert g.leaves() == (2,)
    torch.testing.assert_close(cell.step(x, hp), expected)
    assert torch.relu(p01[:, 2:]).eq(0).any(), "the chosen weights should exercise relu's zero side"


def test_leaves_mean_and_identity_op() -> None:
    g = Genotype("rnn", ("tanh", "identity", "tanh", "sigmoid"), ((0, 1), (0, 2), (0, 3)))
    torch.manual_seed(1)
    cell = DagRNNCell(g, 4, 5)
    x, hp = torch.randn(3, 4), torch.randn(3, 5)
    assert g.leaves() == (1, 2, 3)
    torch.testing.assert_close(cell.step(x, hp), _reference_step(g, cell, x, hp))
    with torch.no_grad():  # identity op: node 1 = s0 + c*(s0 W_g - s0), checked explicitly
        s0 = _reference_step(Genotype("rnn", g.ops, ()), cell, x, hp)
        pre = s0 @ cell.edge_weight(0, 1)
        s1 = s0 + torch.sigmoid(pre[:, :5]) * (pre[:, 5:] - s0)
        one_leaf = DagRNNCell(Genotype("rnn", g.ops[:2], ((0, 1),)), 4, 5)
        one_leaf.w0.copy_(cell.w0)
        one_leaf.edge_weight(0, 1).copy_(cell.edge_weight(0, 1))
    torch.testing.assert_close(one_leaf.step(x, hp), s1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_genotypes_match_reference(seed: int) -> None:
    dense = Genotype.dense("rnn", 6, seed)
    g = dense
    rng = torch.Generator().manual_seed(seed)
    for _ in range(6):  # shrink a few random edges, as the search does
        edge = g.edges[int(torch.randint(len(g.edges), (1,), generator=rng))]
        g = g.without_edge(edge)
    torch.manual_seed(seed)
    cell = DagRNNCell(g, 6, 6)
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.8, 0.8)  # large weights so every gate and activation matters
    x, hp = torch.randn(4, 6), torch.randn(4, 6)
    torch.testing.assert_close(cell.step(x, hp), _reference_step(g, cell, x, hp))


def test_pruning_gives_unreachable_nodes_no_weights() -> None:
    g = Genotype("rnn", ("tanh", "relu", "sigmoid", "identity"), ((0, 1), (1, 3), (2, 3)))
    cell = DagRNNCell(g, 4, 4)
    assert set(cell.edge_w.keys()) == {"0", "1"}
    with pytest.raises(KeyError):
        cell.edge_weight(2, 3)
    n_params = sum(p.numel() for p in cell.parameters())
    assert n_params == 8 * 8 + 2 * 4 * 8  # W0 plus the two live edges
    x, hp = torch.randn(2, 4), torch.randn(2, 4)
    torch.testing.assert_close(cell.step(x, hp), _reference_step(g, cell, x, hp))


def test_no_edges_means_h_is_s0() -> None:
    g = Genotype("rnn", ("tanh", "relu", "sigmoid"), ())
    cell = DagRNNCell(g, 3, 3)
    x, hp = torch.randn(2, 3), torch.randn(2, 3)
    pre0 = torch.cat([x, hp], 1) @ cell.w0
    s0 = hp + torch.sigmoid(pre0[:, :3]) * (torch.tanh(pre0[:, 3:]) - hp)
    torch.testing.assert_close(cell.step(x, hp), s0)


def test_forward_equals_stepping() -> None:
    cell = DagRNNCell(Genotype.dense("rnn", 5, 3), 4, 4)
    x, h0 = torch.randn(6, 2, 4), torch.randn(2, 4)
    out, h_last = cell(x, h0)
    h = h0
    for t in range(6):
        h = cell.step(x[t], h)
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close(h_last, h)


def test_language_model_shapes_logprobs_and_gradients() -> None:
    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), vocab_size=11, emb=8, hidden=8)
    tokens = torch.randint(0, 11, (5, 3))
    log_probs, h = model(tokens, model.init_hidden(3))
    assert log_probs.shape == (5, 3, 11) and h.shape == (3, 8)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(5, 3))
    log_probs.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    # tied decoder: the only V-sized tensors are the embedding and the decoder bias
    assert sorted(tuple(p.shape) for p in model.parameters() if 11 in p.shape) == [(11,), (11, 8)]


def test_tied_decoder_needs_equal_sizes_and_rnn_kind() -> None:
    with pytest.raises(ValueError, match="emb == hidden"):
        RNNLanguageModel(Genotype.dense("rnn", 3, 0), 10, emb=8, hidden=6)
    with pytest.raises(ValueError, match="rnn genotype"):
        DagRNNCell(Genotype.dense("cnn", 3, 0), 4, 4)


def test_dropouts_only_in_training_and_word_rows_dropped_together() -> None:
    torch.manual_seed(0)
    g = Genotype.dense("rnn", 4, 1)
    plain = RNNLanguageModel(g, 20, 6, 6)
    noisy = RNNLanguageModel(g, 20, 6, 6, dropout=0.5, dropout_h=0.5, dropout_x=0.5, dropout_e=0.5, dropout_w=0.5)
    noisy.load_state_dict(plain.state_dict())
    tokens = torch.randint(0, 20, (4, 3))
    noisy.eval()
    torch.testing.assert_close(noisy(tokens, noisy.init_hidden(3))[0], plain(tokens, plain.init_hidden(3))[0])
    noisy.train()
    assert not torch.allclose(noisy(tokens, noisy.init_hidden(3))[0], plain(tokens, plain.init_hidden(3))[0])

    rows = RNNLanguageModel(g, 20, 6, 6, dropout_e=0.5).train()
    same_word = torch.full((8, 4), 7)
    emb = rows._embed(same_word)
    first = emb[0, 0]
    assert torch.equal(emb, first.expand_as(emb))  # one word: kept or dropped everywhere
    assert torch.equal(first, torch.zeros(6)) or torch.allclose(first, 2 * rows.encoder.weight[7])

    words = RNNLanguageModel(g, 20, 6, 6, dropout_w=0.5).train()
    emb = words._embed(same_word)
    dropped = emb.abs().sum(-1) == 0
    assert dropped.any() and (~dropped).any()  # whole token vectors vary by position
    torch.testing.assert_close(emb[~dropped], 2 * words.encoder.weight[7].expand_as(emb[~dropped]))


def test_shrinkrnn_asset_has_23m_parameters() -> None:
    data = json.loads((ASSETS / "shrinkrnn.json").read_text())
    g = Genotype.from_dict(data)
    net = data["network"]
    assert g.name == "ShrinkRNN" and g.num_edges == 12 and g.pruned() == g
    assert g.ops == ("tanh", "identity", "sigmoid", "sigmoid", "tanh", "identity")
    cost = rnn_cost(g, net["emb"], net["hidden"], net["vocab"])
    assert abs(cost.params - 23.0e6) / 23.0e6 < 0.01
    assert cost.flops == 12 * 745**2


@pytest.mark.parametrize("seed", [0, 4])
def test_cost_counts_match_real_module(seed: int) -> None:
    g = Genotype.dense("rnn", 6, seed).without_edge((0, 1)).without_edge((0, 2))
    model = RNNLanguageModel(g, vocab_size=13, emb=5, hidden=5)
    cost = rnn_cost(g, 5, 5, 13)
    assert cost.params == sum(p.numel() for p in model.parameters())
    assert cost.flops == g.pruned().num_edges * 25


def test_training_loss_equals_nll_of_the_forward_log_probs():
    """model.loss (the proxy's fused decoder + cross-entropy) is nll_loss of forward's log-probs,
    value and gradients, in fp32; in bf16 the decoder runs in bf16 and the loss stays close."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), 37, emb=8, hidden=8)
    tokens, targets = torch.randint(0, 37, (6, 3)), torch.randint(0, 37, (6, 3))
    log_probs, h = model(tokens, model.init_hidden(3))
    ref = F.nll_loss(log_probs.reshape(-1, 37), targets.reshape(-1))
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    loss, h2 = model.loss(tokens, model.init_hidden(3), targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(h2, h)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)
    model.matmul_dtype = torch.bfloat16
    low, _ = model.loss(tokens, model.init_hidden(3), targets)
    assert low.dtype == torch.float32 and abs(low.item() - ref.item()) < 0.05


def _stepwise(cell: DagRNNCell, x: torch.Tensor, h0: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The sequence through the reference equations (`_cell`) step by step, under autograd."""
    xw = x @ cell.w0[: cell.emb]
    outs, h = [], h0
    for t in range(x.size(0)):
        h = cell._cell(xw[t], h, mask)
        outs.append(h)
    return torch.stack(outs)


@pytest.mark.parametrize(
    "genotype",
    [
        Genotype.dense("rnn", 6, 0).without_edge((0, 5)),  # a paper candidate: identity, tanh, sigmoid
        Genotype("rnn", ("tanh", "relu", "sigmoid", "identity"), ((0, 1), (0, 2), (1, 3), (0, 3))),  # two leaves
        Genotype("rnn", ("relu", "relu", "tanh"), ((0, 1), (1, 2), (0, 2))),  # relu and mixed groups
        Genotype("rnn", ("tanh", "sigmoid"), ((0, 1),)),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_sequence_scan_matches_the_stepwise_equations_in_value_and_gradient(genotype: Genotype, masked: bool) -> None:
    """DagRNNCell.forward runs the hand-written BPTT of core/nets/dag_scan.py; in float64 its
    outputs and the gradients of x, h0, W0 and every W_ij equal autograd through `_cell`."""
    torch.manual_seed(1)
    cell = DagRNNCell(genotype, 5, 7, dropout_h=0.5 if masked else 0.0).double()
    with torch.no_grad():
        for w in cell.parameters():
            w.uniform_(-0.8, 0.8)  # large weights: every gate and relu leaves its linear range
    x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(2)
    fast, last = cell(x, h0)  # training mode: draws the hidden mask when masked
    torch.manual_seed(2)
    mask = (torch.empty(3, 7, dtype=torch.float64).bernoulli_(0.5) / 0.5) if masked else None
    slow = _stepwise(cell, x, h0, mask)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
    torch.testing.assert_close(last, slow[-1], rtol=0, atol=1e-12)
    weights = torch.randn_like(slow)
    inputs = [x, h0, *cell.parameters()]
    fast_grads = torch.autograd.grad((fast * weights).sum() + last.square().sum(), inputs)
    slow_grads = torch.autograd.grad((slow * weights).sum() + slow[-1].square().sum(), inputs)
    for a, b in zip(fast_grads, slow_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_bf16_decoder_gradients_match_fp32_across_chunks_and_blocks(monkeypatch) -> None:
    """In bf16 the decoder keeps blocks of p's and multiplies them per block; with tiny chunks
    and blocks (several full blocks and a partial one) its gradients stay those of fp32 to
    bf16 rounding, and the no-gradient (validation) pass gives the same loss."""
    import core.nets.rnn as rnn

    monkeypatch.setattr(rnn, "NLL_CHUNK", 4)
    monkeypatch.setattr(rnn, "BF16_BLOCK", 12)
    torch.manual_seed(0)
    model = RNNLanguageModel(Genotype.dense("rnn", 4, 0), 37, emb=8, hidden=8)
    tokens, targets = torch.randint(0, 37, (7, 5)), torch.randint(0, 37, (7, 5))  # 35 rows
    results = {}
    for dtype in (None, torch.bfloat16):
        model.matmul_dtype = dtype
        loss, _ = model.loss(tokens, model.init_hidden(5), targets)
        with torch.no_grad():
            assert model.loss(tokens, model.init_hidden(5), targets)[0].item() == loss.item()
        results[dtype] = loss, torch.autograd.grad(loss, list(model.parameters()))
    (ref, ref_grads), (low, low_grads) = results[None], results[torch.bfloat16]
    assert abs(low.item() - ref.item()) < 0.02
    for a, b in zip(low_grads, ref_grads):
        assert (a - b).norm() <= 0.03 * b.norm() + 1e-6


def test_a_target_whose_probability_underflows_counts_the_floor_not_infinity() -> None:
    """Training takes log p of the target from the softmax: when the target's p underflows fp32
    (a logit 200 below another) the token counts -log(P_FLOOR), 87.3 nats, so the loss stays
    finite and the divergence rule, not a NaN, judges it; validation (log_softmax) gives 200."""
    import core.nets.rnn as rnn

    out = torch.tensor([[1.0, 0.0]], requires_grad=True)
    weight = torch.tensor([[200.0, 0.0], [0.0, 0.0]])
    bias, targets = torch.zeros(2), torch.tensor([1])
    train = rnn._ChunkedNLL.apply(out, weight, bias, targets, None, True)
    with torch.no_grad():
        val = rnn._ChunkedNLL.apply(out, weight, bias, targets, None, False)
    assert train.item() == pytest.approx(-math.log(rnn.P_FLOOR), rel=1e-6) and val.item() == pytest.approx(200.0)
    train.backward()
    assert torch.isfinite(out.grad).all() and out.grad[0, 0].item() == pytest.approx(200.0)


@pytest.mark.parametrize("masked", [False, True])
def test_the_bf16_scan_stays_within_bf16_rounding_of_fp32(masked: bool) -> None:
    """With matmul_dtype bf16 the scan's matmuls (forward, backward, weight gradients) take bf16
    operands and everything else stays fp32: outputs and every gradient stay within bf16
    rounding of the fp32 scan's, and they come back in fp32."""
    genotype = Genotype.dense("rnn", 6, 0).without_edge((0, 5))  # a paper candidate
    torch.manual_seed(3)
    cell = DagRNNCell(genotype, 16, 16, dropout_h=0.5 if masked else 0.0)
    x, h0 = torch.randn(12, 8, 16), torch.randn(8, 16)
    weights = torch.randn(12, 8, 16)
    results = {}
    for dtype in (None, torch.bfloat16):
        cell.matmul_dtype = dtype
        torch.manual_seed(4)  # the same hidden mask in both
        inputs = [x.clone().requires_grad_(), h0.clone().requires_grad_(), *cell.parameters()]
        out, _ = cell(inputs[0], inputs[1])
        results[dtype] = out, torch.autograd.grad((out * weights).sum(), inputs)
    (ref, ref_grads), (low, low_grads) = results[None], results[torch.bfloat16]
    assert low.dtype == torch.float32 and all(g.dtype == torch.float32 for g in low_grads)
    assert not torch.equal(low, ref)  # the bf16 path really ran
    assert (low - ref).abs().max() < 0.02
    for a, b in zip(low_grads, ref_grads):
        assert (a - b).norm() <= 0.03 * b.norm() + 1e-6
