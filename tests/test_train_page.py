"""The Train page through AppTest: the form (genotype sources, schedules, inline errors), a tiny
job started from the page that finishes with curves, results and exports and then shows up
in Compare with its measured accuracy, and Stop/Resume of a running job."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import app_test, wait_until
from streamlit.testing.v1 import AppTest

from core.store.jobs import JobStore
from core.store.runs import RunStatus
from ui.train.figures import result_rows, training_figure

ROOT = Path(__file__).resolve().parents[1]


def _app(monkeypatch, store_path: Path) -> AppTest:
    at = app_test(monkeypatch, store_path)
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in (at.markdown, at.caption, at.info, at.error, at.subheader) for e in kind)


def _tiny(at: AppTest, epochs: int) -> None:
    at.number_input(key="train.epochs").set_value(epochs)
    at.number_input(key="train.max_batches").set_value(4)
    at.checkbox(key="train.onnx").uncheck()


def test_form_sources_schedules_and_inline_errors(monkeypatch, tmp_path) -> None:
    path = tmp_path / "form.db"
    at = _app(monkeypatch, path)
    assert "No training jobs yet" in _texts(at)
    assert any(c.value.startswith("Network: ") and "MACs per 8x8 image" in c.value for c in at.caption)
    at.selectbox(key="train-genotype-preset").set_value("shrinkcnn-b").run()
    assert at.selectbox(key="train.activation").value == "swish"  # ShrinkCNN-B is the Swish model
    at.selectbox(key="train_schedule").set_value("paper").run()
    assert at.selectbox(key="train.network").value == "imagenet" and at.number_input(key="train.epochs").value == 300
    cost = next(c.value for c in at.caption if c.value.startswith("Network: "))
    params, macs = (int(n.replace(",", "")) for n in re.findall(r"[\d,]{5,}", cost)[:2])
    assert abs(params - 3.64e6) < 0.02 * 3.64e6 and abs(macs - 383.7e6) < 0.02 * 383.7e6  # the spec's figures
    assert "MACs per 224x224 image" in cost and "1001 classes" in cost
    at.selectbox(key="train_schedule").set_value("demo").run()
    at.number_input(key="train.epochs").set_value(0)
    at.text_input(key="train.widths").set_value("24, x")
    at.text_input(key="train.data").set_value("mnist")
    at.button(key="train_start").click().run()
    errors = [e.value for e in at.error]
    assert any("epochs must be at least 1" in e for e in errors)
    assert any("not a comma-separated list of integers" in e for e in errors)
    assert any("unknown dataset 'mnist'" in e for e in errors)
    assert JobStore(path).list_jobs() == []
    at.selectbox(key="train-genotype-preset").set_value("shrinkrnn").run()
    assert at.selectbox(key="train_schedule").options == ["demo", "paper"] and not at.error
    assert at.number_input(key="train.bptt").value == 35 and at.number_input(key="train.dropout").value == 0.75
    assert any(c.value.startswith("Language model: ") for c in at.caption)
    assert not at.exception


def test_a_tiny_job_finishes_with_curves_results_exports_and_joins_compare(monkeypatch, tmp_path) -> None:
    path = tmp_path / "finish.db"
    at = _app(monkeypatch, path)
    _tiny(at, 2)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    store = JobStore(path)
    (job,) = store.list_jobs()
    assert any(f"Job #{job.id} started" in s.value for s in at.success)  # feedback beside the button
    wait_until(lambda: store.get_job(job.id).status == RunStatus.FINISHED, "the job to finish", 60, poll=0.3)
    at.run()
    assert f"Job #{job.id}" in _texts(at) and at.get("progress")[0].proto.value == 100
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    titles = {a["text"] for a in spec["layout"]["annotations"]}
    assert {"loss", "accuracy", "learning rate", "images / s"} <= titles
    assert len(at.main.dataframe[0].value) == 2  # the results table: one row per epoch
    assert {"State dict (.pt)", "Genotype + config JSON"} <= {b.label for b in at.get("download_button")}
    from ui.train.live import download_name

    slug = "".join(ch if ch.isalnum() else "-" for ch in job.name.lower()).strip("-")
    assert download_name(job, "/x/model.onnx") == f"job{job.id}-{slug}.onnx"  # e.g. job12-shrinkcnn-a.onnx
    assert download_name(job, "/x/genotype.json") == f"job{job.id}-{slug}-genotype.json"
    assert "build_cnn" in at.code[0].value and "weights_only=True" in at.code[0].value
    accuracy = store.get_job(job.id).metrics["accuracy"]

    at.switch_page("views/compare.py").run()
    at.selectbox(key="compare0-source").set_value("Trained model").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.main.dataframe[-1].value
    row = table[table["genotype"] == f"job{job.id}-ShrinkCNN-A"].iloc[0]
    assert row["proxy accuracy %"] == round(100 * accuracy, 2) and "final training" in row["measured on"]


def test_stop_and_resume_from_the_page(monkeypatch, tmp_path) -> None:
    path = tmp_path / "stop.db"
    at = _app(monkeypatch, path)
    _tiny(at, 200)
    at.button(key="train_start").click().run()
    store = JobStore(path)
    (job,) = store.list_jobs()
    wait_until(lambda: len(store.epochs(job.id)) >= 1, "a first epoch", 60, poll=0.3)
    at.run()
    at.button(key="train_stop").click().run()
    wait_until(lambda: store.get_job(job.id).status == RunStatus.STOPPED, "the job to stop", 30, poll=0.3)
    at.run()
    at.run()
    done = len(store.epochs(job.id))
    at.button(key="train_resume").click().run()
    assert not at.exception
    wait_until(lambda: len(store.epochs(job.id)) > done, "an epoch after the resume", 60, poll=0.3)
    at.run()
    assert store.get_job(job.id).status == RunStatus.RUNNING
    at.button(key="train_stop").click().run()
    wait_until(lambda: store.get_job(job.id).status == RunStatus.STOPPED, "the job to stop again", 30, poll=0.3)
    at.run()
    epochs = [e.epoch for e in store.epochs(job.id)]
    assert epochs == list(range(1, len(epochs) + 1))  # resumed where it stopped


def test_rnn_figure_shows_perplexity_on_a_log_axis() -> None:
    rows = [
        {
            "epoch": 1,
            "train_loss": 5.0,
            "val_loss": 4.8,
            "train_ppl": 148.0,
            "val_ppl": 121.0,
            "lr": 20.0,
            "throughput": 9000.0,
        }
    ]
    fig = training_figure(rows, "rnn")
    assert {a.text for a in fig.layout.annotations} == {"loss", "perplexity", "learning rate", "tokens / s"}
    assert fig.layout.yaxis2.type == "log"
    rows[0]["train_acc"] = None
    assert list(result_rows(rows)[0]) == [
        "epoch",
        "train_loss",
        "val_loss",
        "train_ppl",
        "val_ppl",
        "lr",
        "throughput",
    ]  # no empty accuracy column
