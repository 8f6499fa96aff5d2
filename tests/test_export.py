"""Exports: the state_dict and genotype JSON rebuild the trained model exactly, the snippet
shown on the page runs, and the ONNX file reloads in onnxruntime with the same outputs."""

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from core.cell.genotype import Genotype
from core.cell.presets import load_preset
from core.store.jobs import JobStore
from core.training.config import train_config
from core.training.context import TrainOutcome
from core.training.engine import create_job, run_job
from core.training.export import (
    GENOTYPE_FILE,
    ONNX_TOLERANCE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    export_trained,
    load_trained,
    rebuild_snippet,
)
from core.training.rnn import build_language_model, model_config


def test_finished_cnn_job_exports_weights_genotype_and_a_checked_onnx(store_path):
    store = JobStore(store_path)
    cfg = train_config("cnn", "demo", epochs=1, max_batches=4, threads=1, activation="swish")
    job = create_job(store, load_preset("shrinkcnn-b"), cfg, "preset:shrinkcnn-b")
    run_job(store, job)
    rec = store.get_job(job)
    exports = rec.metrics["exports"]
    assert rec.status == "finished" and exports["onnx_ok"] and exports["onnx_max_diff"] <= ONNX_TOLERANCE
    d = Path(exports["dir"])
    bundle = json.loads((d / GENOTYPE_FILE).read_text())
    assert Genotype.from_dict(bundle) == load_preset("shrinkcnn-b")  # still an ordinary genotype file
    assert bundle["model"]["config"]["activation"] == "swish" and bundle["trained"]["job_id"] == job

    model = load_trained(d)
    images = torch.randn(5, 1, 8, 8)  # a batch size the export never saw
    session = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    got = session.run(None, {"images": images.numpy()})[0]
    with torch.no_grad():
        want = model(images).numpy()
    assert np.abs(got - want).max() < 1e-4

    namespace: dict = {"images": images}
    assert "(N, 1, 8, 8)" in rebuild_snippet(d, bundle)  # the data's shape (8x8 grey digits), not 3xHxW
    exec(rebuild_snippet(d, bundle), namespace)  # the page's snippet, run as a user would
    with torch.no_grad():
        assert torch.allclose(namespace["logits"], torch.from_numpy(want), atol=1e-6)


def test_language_model_onnx_round_trip_and_vocabulary(tmp_path):
    torch.manual_seed(0)
    cfg = train_config("rnn", emb=8, hidden=8, bptt=5)
    vocab = [f"w{i}" for i in range(30)]
    model = build_language_model(load_preset("shrinkrnn"), len(vocab), cfg).eval()
    tokens = torch.randint(0, 30, (5, 1))
    outcome = TrainOutcome(
        stopped=False,
        metrics={"perplexity": 12.0},
        model=model,
        model_spec={"builder": "core.nets.rnn.RNNLanguageModel", "config": model_config(30, cfg)},
        example_inputs=(tokens, model.init_hidden(1)),
        input_names=("tokens", "hidden"),
        output_names=("log_probs", "hidden_out"),
        vocab=vocab,
    )
    out = export_trained(tmp_path, load_preset("shrinkrnn"), outcome)
    assert out["onnx_ok"] and (tmp_path / VOCAB_FILE).read_text().split("\n") == vocab
    session = ort.InferenceSession(out["onnx"], providers=["CPUExecutionProvider"])
    h0 = torch.randn(1, 8)
    log_probs, h = session.run(None, {"tokens": tokens.numpy(), "hidden": h0.numpy()})
    rebuilt = load_trained(tmp_path)
    with torch.no_grad():
        want_lp, want_h = rebuilt(tokens, h0)
    assert np.abs(log_probs - want_lp.numpy()).max() < 1e-4 and np.abs(h - want_h.numpy()).max() < 1e-5
    assert torch.equal(torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)["encoder.weight"], model.encoder.weight)
    namespace: dict = {"tokens": tokens}
    exec(rebuild_snippet(tmp_path, json.loads((tmp_path / GENOTYPE_FILE).read_text())), namespace)
    assert namespace["vocab"] == vocab and namespace["log_probs"].shape == (5, 1, 30)
