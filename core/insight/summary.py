"""Cost of a genotype in a given network: what `summary` prints and Compare shows.

CNN cells are costed inside a whole network (the proxy net, a CIFAR ShrinkCNN or the
ImageNet-224 ShrinkCNN); RNN cells inside the language model (FLOPs = edges x h^2).
"""

from __future__ import annotations

from core.cell.genotype import Genotype
from core.cell.presets import load_genotype_arg, preset_network
from core.data.spec import PTB_VOCAB


def network_defaults(arg: str) -> dict:
    """The preset's own network settings (e.g. ShrinkCNN-B is Swish), {} for plain files."""
    return preset_network(arg.split(":", 1)[1]) if arg.startswith("preset:") else {}


def cnn_network(
    network: str = "proxy", input_size: int | None = None, classes: int | None = None, activation: str = "relu"
):
    from core.nets.cnn import cifar_config, imagenet_config, proxy_config

    if network == "imagenet":
        return imagenet_config(activation=activation, num_classes=classes or 1001, input_size=input_size or 224)
    if network == "cifar":
        return cifar_config(activation=activation, num_classes=classes or 10)
    return proxy_config(num_classes=classes or 10, input_size=input_size or 32)


def summarize_genotype(
    g: Genotype,
    network: str = "proxy",
    input_size: int | None = None,
    classes: int | None = None,
    activation: str = "relu",
    emb: int = 100,
    hidden: int = 100,
    vocab: int = PTB_VOCAB,
    with_table: bool = False,
) -> dict:
    out = {"kind": g.kind, "name": g.name, "hash": g.hash, "nodes": g.n_nodes, "edges": g.pruned().num_edges}
    if g.kind == "rnn":
        from core.nets.rnn import rnn_cost

        cost = rnn_cost(g, emb, hidden, vocab)
        return {**out, "emb": emb, "hidden": hidden, "vocab": vocab, "params": cost.params, "flops": cost.flops}
    from core.nets.cnn import cnn_cost, cnn_summary

    cfg = cnn_network(network, input_size, classes, activation)
    cost = cnn_cost(g, cfg)
    out.update(
        network=network,
        input_size=cfg.input_size,
        classes=cfg.num_classes,
        activation=cfg.activation,
        params=cost.params,
        macs=cost.macs,
    )
    if with_table:
        out["table"] = cnn_summary(g, cfg)
    return out


def summarize(
    arg: str,
    network: str | None = None,
    input_size: int | None = None,
    classes: int | None = None,
    activation: str | None = None,
    emb: int | None = None,
    hidden: int | None = None,
    vocab: int | None = None,
    with_table: bool = False,
) -> dict:
    g, net = load_genotype_arg(arg), network_defaults(arg)
    return summarize_genotype(
        g,
        network=network or net.get("config", "proxy"),
        input_size=input_size,
        classes=classes,
        activation=activation or net.get("activation", "relu"),
        emb=emb or net.get("emb", 100),
        hidden=hidden or net.get("hidden", 100),
        vocab=vocab or net.get("vocab", PTB_VOCAB),
        with_table=with_table,
    )
