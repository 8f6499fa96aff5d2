import json

import pytest

from core.cell.genotype import CNN_OPS, Genotype, GenotypeError

SHRINK = ((0, 1), (0, 2), (0, 3), (1, 3), (0, 4), (2, 4))


def cnn(edges, n=5):
    return Genotype("cnn", ("input",) + ("sep3x3",) * (n - 1), edges)


def test_dense_has_every_forward_edge_and_equal_op_shares():
    g = Genotype.dense("cnn", 8, seed=3)
    assert g.num_edges == 28
    assert all(i < j for i, j in g.edges)
    assert sorted(g.ops).count("sep3x3") == 4 and sorted(g.ops).count("conv1x1") == 4
    assert Genotype.dense("cnn", 8, seed=3).ops == g.ops
    assert any(Genotype.dense("cnn", 8, seed=s).ops != g.ops for s in range(4, 12))


def test_pruning_drops_edges_leaving_unreachable_nodes():
    g = cnn(((0, 1), (1, 3), (2, 3), (2, 4), (3, 4)))  # node 2 has no in-edge: unreachable
    p = g.pruned()
    assert p.reachable() == {0, 1, 3, 4}
    assert p.edges == ((0, 1), (1, 3), (3, 4))


def test_removing_an_edge_prunes_what_it_cut_off():
    g = cnn(((0, 1), (1, 2), (1, 3), (2, 4), (3, 4)))
    assert g.without_edge((0, 1)).edges == ()
    assert g.without_edge((1, 2)).edges == ((0, 1), (1, 3), (3, 4))


def test_leaves():
    g = cnn(SHRINK)
    assert g.leaves() == (3, 4)
    assert cnn(((0, 1), (1, 2), (0, 3))).leaves() == (2, 3)  # node 4 unreachable, not a leaf
    assert cnn(()).leaves() == (0,)  # node 0 without out-edge
    assert cnn(((1, 2),)).leaves() == (0,)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(kind="cnn", ops=("input", "sep3x3"), edges=((1, 0),)), "backward"),
        (dict(kind="cnn", ops=("input", "sep3x3"), edges=((1, 1),)), "self edge"),
        (dict(kind="cnn", ops=("input", "sep3x3"), edges=((0, 2),)), "outside 0..1"),
        (dict(kind="cnn", ops=("input", "maxpool"), edges=((0, 1),)), "unknown op 'maxpool'"),
        (dict(kind="rnn", ops=("tanh", "sep3x3"), edges=((0, 1),)), "unknown op 'sep3x3'"),
        (dict(kind="cnn", ops=("input",), edges=()), "node count 1"),
        (dict(kind="cnn", ops=("input",) + ("sep3x3",) * 16, edges=()), "node count 17"),
        (dict(kind="gru", ops=("input", "sep3x3"), edges=()), "unknown genotype kind"),
    ],
)
def test_validation_errors_are_one_line_and_name_the_problem(kwargs, fragment):
    with pytest.raises(GenotypeError) as err:
        Genotype(**kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_json_round_trip_is_stable_and_readable():
    g = Genotype("cnn", ("input", "sep3x3", "sep3x3", "sep3x3", "conv1x1"), SHRINK, name="ShrinkCNN")
    text = g.to_json()
    back = Genotype.from_json(text)
    assert back == g and back.name == "ShrinkCNN" and back.to_json() == text
    assert json.loads(text)["edges"][0] == [0, 1]
    assert "\n    [0, 2]," in text  # one edge per line


def test_hash_is_content_identity():
    a = cnn(SHRINK)
    b = Genotype("cnn", a.ops, tuple(reversed(SHRINK)), name="other name")
    assert a.hash == b.hash and len(a.hash) == 12
    assert a.hash != a.without_edge((0, 4)).hash


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"kind": "cnn", "ops": ["input", "sep3x3"]}', "lacks edges"),
        ('{"kind": "cnn", "ops": ["input", "sep3x3"], "edges": [[0]]}', "integer pairs"),
        ('{"kind": "cnn", "nodes": 3, "ops": ["input", "sep3x3"], "edges": []}', "says 3 nodes"),
    ],
)
def test_bad_json_gets_a_clear_error(text, fragment):
    with pytest.raises(GenotypeError, match=fragment):
        Genotype.from_json(text)


def test_ops_constants():
    assert CNN_OPS == ("sep3x3", "conv1x1")
