"""Exports of a trained model: state_dict, ONNX, and the genotype JSON that rebuilds it.

The genotype JSON is the ordinary genotype file (it loads anywhere a genotype does) with a
"model" object added: which builder to call and the full configuration to call it with,
so `rebuild_model` (or the snippet shown on the Train page) gives back exactly the
trained network. The ONNX file comes from torch.onnx.export's dynamo exporter (the default
in torch 2.13; it needs onnxscript) and is checked by running it in onnxruntime against
PyTorch before the job calls itself finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch
from torch import nn

from core.cell.genotype import Genotype, GenotypeError
from core.training.checkpoint import load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from core.training.context import TrainOutcome

GENOTYPE_FILE, WEIGHTS_FILE, ONNX_FILE, VOCAB_FILE = "genotype.json", "model.pt", "model.onnx", "vocab.txt"
ONNX_TOLERANCE = 1e-4  # max |onnxruntime - torch|, relative to the output's scale (at least 1)
MAX_DYNAMIC_BATCH = 1 << 16


def model_bundle(genotype: Genotype, model_spec: dict, trained: dict | None = None) -> dict:
    """The genotype's JSON with "model" (builder + config) and what the training measured."""
    return {**genotype.to_dict(), "model": model_spec, "trained": trained or {}}


CNN_BUILDER = "core.nets.cnn.build_cnn"
RNN_BUILDER = "core.nets.rnn.RNNLanguageModel"
# Exports written before core/ was split into packages name the old module paths.
_LEGACY_BUILDERS = {"core.cnn.build_cnn": CNN_BUILDER, "core.rnn.RNNLanguageModel": RNN_BUILDER}


def builder_of(spec: dict) -> str:
    """The builder's current name, whatever version of the project wrote the export."""
    return _LEGACY_BUILDERS.get(spec["builder"], spec["builder"])


def rebuild_model(bundle: dict) -> nn.Module:
    """An untrained network of the exported architecture; load the state_dict into it."""
    genotype = Genotype.from_dict(bundle)
    spec = bundle.get("model")
    if not isinstance(spec, dict) or "builder" not in spec:
        raise GenotypeError("this genotype JSON has no 'model' entry; it was not exported by a training job")
    if builder_of(spec) == CNN_BUILDER:
        from core.nets.cnn import CNNConfig, build_cnn

        return build_cnn(genotype, CNNConfig.from_dict(spec["config"]))
    if builder_of(spec) == RNN_BUILDER:
        from core.nets.rnn import RNNLanguageModel

        return RNNLanguageModel(genotype, **spec["config"])
    raise GenotypeError(f"unknown model builder {spec['builder']!r}")


def load_trained(directory: Path) -> nn.Module:
    """The exported model of a job directory, weights loaded (weights_only), in eval mode."""
    directory = Path(directory)
    bundle = json.loads((directory / GENOTYPE_FILE).read_text())
    model = rebuild_model(bundle)
    model.load_state_dict(load_checkpoint(directory / WEIGHTS_FILE))
    return model.eval()


def rebuild_snippet(directory: Path, bundle: dict) -> str:
    """A short, runnable Python snippet that rebuilds the trained model (shown on the Train page)."""
    d = Path(directory)
    if builder_of(bundle["model"]) == CNN_BUILDER:
        build = (
            "from core.nets.cnn import CNNConfig, build_cnn\n\n"
            f"spec = json.loads(Path({str(d / GENOTYPE_FILE)!r}).read_text())\n"
            "model = build_cnn(Genotype.from_dict(spec), CNNConfig.from_dict(spec['model']['config']))\n"
        )
        net = bundle["model"].get("config", {})
        c, size = net.get("in_channels", 3), net.get("input_size", 32)
        use = (
            f"logits = model(images)  # images: (N, {c}, {size}, {size}) float tensors, "
            "normalised like the training data"
        )
    else:
        build = (
            "from core.nets.rnn import RNNLanguageModel\n\n"
            f"spec = json.loads(Path({str(d / GENOTYPE_FILE)!r}).read_text())\n"
            "model = RNNLanguageModel(Genotype.from_dict(spec), **spec['model']['config'])\n"
        )
        use = (
            f"vocab = Path({str(d / VOCAB_FILE)!r}).read_text().split('\\n')  # token id -> word\n"
            "log_probs, hidden = model(tokens, model.init_hidden(tokens.size(1)))  # tokens: (T, B) ids"
        )
    return (
        "import json\nfrom pathlib import Path\n\nimport torch\n\nfrom core.cell.genotype import Genotype\n"
        + build
        + f"model.load_state_dict(torch.load({str(d / WEIGHTS_FILE)!r}, weights_only=True))\n"
        + "model.eval()\n"
        + use
        + "\n"
    )


# ----- ONNX ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs optional-dependency notices (torchvision) and deprecation warnings
    that mean nothing to a user; keep them out of the CLI's one-line world."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    example_inputs: tuple,
    path: Path,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    dynamic_batch: bool,
) -> None:
    """torch.onnx.export with the dynamo exporter into one self-contained file.

    dynamic_batch marks dim 0 of the first input as free (CNN images). The RNN is exported
    with its example's sequence length and batch: its forward unrolls the time loop.
    """
    path = Path(path)
    model = model.eval()
    dynamic = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)
        dynamic = ({0: batch},) + tuple(None for _ in example_inputs[1:])
    with _quiet_exporter(), torch.no_grad():
        torch.onnx.export(
            model,
            tuple(example_inputs),
            str(path),
            dynamo=True,
            external_data=False,
            verbose=False,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic,
        )


def check_onnx(path: Path, model: nn.Module, inputs: tuple) -> float:
    """Run the ONNX file in onnxruntime and return max |ort - torch| over all outputs, scaled
    by the larger of 1 and the output's magnitude (log-probs of a big vocabulary are large)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: t.detach().cpu().numpy() for i, t in zip(session.get_inputs(), inputs)}
    got = session.run(None, feeds)
    with torch.no_grad():
        want = model.eval()(*inputs)
    want = want if isinstance(want, (tuple, list)) else (want,)
    worst = 0.0
    for g, w in zip(got, want):
        w = w.detach().cpu().numpy()
        scale = max(1.0, float(np.abs(w).max()))
        worst = max(worst, float(np.abs(g - w).max()) / scale)
    return worst


def check_inputs(example_inputs: tuple, dynamic_batch: bool) -> tuple:
    """Inputs for the check: a different batch size from the export's when the batch is free,
    so the check proves the dynamic dimension works too."""
    if not dynamic_batch:
        return example_inputs
    x = example_inputs[0]
    return (torch.cat([x, x[:1]]),) + tuple(example_inputs[1:])


# ----- a finished job's exports -------------------------------------------------------------
def export_trained(
    directory: Path,
    genotype: Genotype,
    outcome: "TrainOutcome",
    with_onnx: bool = True,
    job_id: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Write model.pt, genotype.json (+ vocab.txt for language models) and model.onnx; return paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = outcome.model.eval().cpu()
    save_checkpoint(model.state_dict(), directory / WEIGHTS_FILE)
    trained = {"job_id": job_id, **{k: v for k, v in outcome.metrics.items() if not isinstance(v, (dict, list))}}
    bundle = model_bundle(genotype, outcome.model_spec, trained)
    (directory / GENOTYPE_FILE).write_text(json.dumps(bundle, indent=2) + "\n")
    out: dict = {
        "dir": str(directory),
        "weights": str(directory / WEIGHTS_FILE),
        "genotype": str(directory / GENOTYPE_FILE),
        "onnx": None,
    }
    if outcome.vocab is not None:
        (directory / VOCAB_FILE).write_text("\n".join(outcome.vocab))
        out["vocab"] = str(directory / VOCAB_FILE)
    if with_onnx:
        if log:
            log("exporting ONNX (dynamo exporter) and checking it with onnxruntime")
        onnx_path = directory / ONNX_FILE
        export_onnx(
            model, outcome.example_inputs, onnx_path, outcome.input_names, outcome.output_names, outcome.dynamic_batch
        )
        diff = check_onnx(onnx_path, model, check_inputs(outcome.example_inputs, outcome.dynamic_batch))
        out.update(onnx=str(onnx_path), onnx_max_diff=diff, onnx_ok=diff <= ONNX_TOLERANCE)
        if log and diff > ONNX_TOLERANCE:
            log(f"warning: ONNX output differs from PyTorch by {diff:.2e} (tolerance {ONNX_TOLERANCE:.0e})")
    return out
