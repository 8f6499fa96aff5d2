"""Run bundles whose numbers no search could have written are refused (issue 17, item 4).

Each case edits one number of a shipped recorded run (assets/runs/, a real CNN and RNN search)
and imports it into a store that already holds a run: the import is refused with one line
naming the number, and the store's files are unchanged byte for byte. The cases that a search
does write (a failed candidate with no score, a diverged epoch's NaN loss, measured noise)
still import. The ranges themselves are in core/search/bundle_ranges.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from fault_kit import cli, only_line

from core.search.bundle import SAMPLE_DIR, BundleError, import_bundle
from core.store.runs import Store

CNN = json.loads(gzip.decompress((SAMPLE_DIR / "cnn-cifar10-proxy.json.gz").read_bytes()))
RNN = json.loads(gzip.decompress((SAMPLE_DIR / "rnn-ptb-proxy.json.gz").read_bytes()))


def _step1(doc: dict) -> tuple[int, int]:
    """Indices in the flat candidate list of step 1's first loser and of its choice (step 0 holds the noise seeds)."""
    removed = doc["steps"][1]["removed"]
    step1 = [i for i, c in enumerate(doc["candidates"]) if c["step"] == 1]
    chosen = next(i for i in step1 if doc["candidates"][i]["edge"] == removed)
    return next(i for i in step1 if i != chosen), chosen


(CNN_LOSER, CNN_CHOSEN), RNN_LOSER = _step1(CNN), _step1(RNN)[0]
HUGE = "__1e400__"  # written as the JSON literal 1e400, which Python reads as inf
NAN = float("nan")  # json.dumps writes the literal NaN


def _edit(doc: dict, path: list, value) -> bytes:
    doc = json.loads(json.dumps(doc))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(doc).encode().replace(f'"{HUGE}"'.encode(), b"1e400").replace(b'"__5000__"', b"7" * 5000)


def _c(i: int, *rest) -> list:
    return ["candidates", i, *rest]


REFUSED = {  # name: (sample, path, value, what the one line says)
    "accuracy 1e308": (CNN, _c(CNN_LOSER, "accuracy"), 1e308, "accuracy is 1e+308, outside [0, 1]"),
    "accuracy -5": (CNN, _c(CNN_LOSER, "accuracy"), -5, "accuracy is -5, outside [0, 1]"),
    "accuracy 1.5": (CNN, _c(CNN_CHOSEN, "accuracy"), 1.5, "accuracy is 1.5, outside [0, 1]"),
    "accuracy NaN": (CNN, _c(CNN_LOSER, "accuracy"), NAN, "not finite"),
    "accuracy Infinity": (CNN, _c(CNN_LOSER, "accuracy"), float("inf"), "not finite"),
    "accuracy 1e400": (CNN, _c(CNN_LOSER, "accuracy"), HUGE, "not finite"),
    "step accuracy 1e308": (CNN, ["steps", 1, "accuracy"], 1e308, "step 1's choice is not one of its"),
    "step accuracy NaN": (CNN, ["steps", 1, "accuracy"], NAN, "not finite"),
    "step score NaN": (CNN, ["steps", 1, "score"], NAN, "not finite"),
    "perplexity on a cnn": (CNN, _c(CNN_LOSER, "perplexity"), 50.0, "a cnn candidate has perplexity"),
    "macs 0": (CNN, _c(CNN_LOSER, "macs"), 0, "macs is 0, outside [1,"),
    "macs -1": (CNN, _c(CNN_LOSER, "macs"), -1, "macs is -1, outside"),
    "macs 1e308": (CNN, _c(CNN_LOSER, "macs"), 1e308, "macs is "),
    "macs 2^64": (CNN, _c(CNN_LOSER, "macs"), 2**64, "macs is 18446744073709551616"),
    "macs 1.5": (CNN, _c(CNN_LOSER, "macs"), 1.5, "macs is not a number"),
    "params -3": (CNN, _c(CNN_LOSER, "params"), -3, "params is -3"),
    "score 1e308": (CNN, _c(CNN_LOSER, "score"), 1e308, "is not the score of its accuracy and macs"),
    "score off": (CNN, _c(CNN_LOSER, "score"), 0.9, "is not the score of its accuracy and macs"),
    "score NaN": (CNN, _c(CNN_LOSER, "score"), NAN, "not finite"),
    "epochs -1": (CNN, _c(CNN_LOSER, "epochs"), -1, "epochs is -1"),
    "epochs over the run's": (CNN, _c(CNN_LOSER, "epochs"), 10**6, "epochs is 1000000, outside [0, 3]"),
    "trained with 0 epochs": (CNN, _c(CNN_LOSER, "epochs"), 0, "lacks its accuracy, macs, params or epochs"),
    "idx over k": (CNN, _c(CNN_LOSER, "idx"), 7, "idx is 7"),
    "wall_s -1": (CNN, _c(CNN_LOSER, "wall_s"), -1, "wall_s is -1"),
    "wall_s 1e308": (CNN, _c(CNN_LOSER, "wall_s"), 1e308, "wall_s is 1e+308"),
    "step wall_s -1": (CNN, ["steps", 2, "wall_s"], -1.0, "step 2: wall_s is -1"),
    "step created_at 1e308": (CNN, ["steps", 2, "created_at"], 1e308, "step 2: created_at is 1e+308"),
    "run created_at -1": (CNN, ["run", "created_at"], -1.0, "run created_at is -1"),
    "run finished_at NaN": (CNN, ["run", "finished_at"], NAN, "not finite"),
    "expected_steps -1": (CNN, ["run", "expected_steps"], -1, "run expected_steps is -1"),
    "expected_steps 10^30": (CNN, ["run", "expected_steps"], 10**30, "run expected_steps is"),
    "a 4000-digit integer": (CNN, ["run", "expected_steps"], int("9" * 4000), "an integer of 4000 digits"),
    "a 5000-digit integer": (CNN, _c(CNN_LOSER, "macs"), "__5000__", "Exceeds the limit"),
    "noise std -0.1": (CNN, ["run", "noise"], {"metric": "accuracy", "std": -0.1, "seeds": 3}, "noise std is -0.1"),
    "noise std NaN": (CNN, ["run", "noise"], {"metric": "accuracy", "std": NAN, "seeds": 3}, "not finite"),
    "noise std 1e308": (CNN, ["run", "noise"], {"metric": "accuracy", "std": 1e308, "seeds": 3}, "noise std is"),
    "noise seeds 0": (CNN, ["run", "noise"], {"metric": "accuracy", "std": 0.01, "seeds": 0}, "noise seeds is 0"),
    "noise mean 2": (
        CNN,
        ["run", "noise"],
        {"metric": "accuracy", "std": 0.1, "seeds": 2, "mean": 2.0},
        "noise mean is 2",
    ),
    "noise value 1e308": (
        CNN,
        ["run", "noise"],
        {"metric": "accuracy", "std": 0.1, "seeds": 2, "values": [1e308]},
        "a noise value is 1e+308",
    ),
    "history val_acc 1e308": (CNN, _c(CNN_LOSER, "history", 0, "val_acc"), 1e308, "history val_acc is 1e+308"),
    "history val_acc NaN": (CNN, _c(CNN_LOSER, "history", 0, "val_acc"), NAN, "history val_acc is not finite"),
    "history train_acc -0.5": (CNN, _c(CNN_LOSER, "history", 0, "train_acc"), -0.5, "history train_acc is -0.5"),
    "history train_loss -1": (CNN, _c(CNN_LOSER, "history", 0, "train_loss"), -1.0, "history train_loss is -1"),
    "history epoch 0": (CNN, _c(CNN_LOSER, "history", 0, "epoch"), 0, "history epoch is 0"),
    "history epoch 999": (CNN, _c(CNN_LOSER, "history", 0, "epoch"), 999, "history epoch is 999"),
    "history seconds -5": (CNN, _c(CNN_LOSER, "history", 0, "seconds"), -5.0, "history seconds is -5"),
    "history seconds NaN": (CNN, _c(CNN_LOSER, "history", 0, "seconds"), NAN, "history seconds is not finite"),
    "history unknown key inf": (CNN, _c(CNN_LOSER, "history", 0, "grad_norm"), float("inf"), "grad_norm is not finite"),
    "meta wall_s -3": (CNN, ["meta", "wall_s"], -3, "meta wall_s is -3"),
    "meta wall_s 1e308": (CNN, ["meta", "wall_s"], 1e308, "meta wall_s is 1e+308"),
    "meta exported_at NaN": (CNN, ["meta", "exported_at"], NAN, "not finite"),
    "meta nested Infinity": (CNN, ["run", "meta", "extra"], {"x": [float("inf")]}, "not finite"),
    "config nodes as text": (CNN, ["run", "config", "nodes"], "8", "setting nodes is '8', not int"),
    "config lr as text": (CNN, ["run", "config", "lr"], "fast", "setting lr is 'fast', not float"),
    "config epochs as float": (CNN, ["run", "config", "epochs"], 1.5, "setting epochs is 1.5, not int"),
    "rnn perplexity 0.5": (RNN, _c(RNN_LOSER, "perplexity"), 0.5, "perplexity is 0.5, outside [1,"),
    "rnn perplexity 1e308": (RNN, _c(RNN_LOSER, "perplexity"), 1e308, "perplexity is 1e+308"),
    "rnn perplexity -5": (RNN, _c(RNN_LOSER, "perplexity"), -5, "perplexity is -5"),
    "rnn flops 0": (RNN, _c(RNN_LOSER, "flops"), 0, "flops is 0"),
    "rnn accuracy": (RNN, _c(RNN_LOSER, "accuracy"), 0.5, "a rnn candidate has accuracy"),
    "rnn history val_ppl 0.5": (RNN, _c(RNN_LOSER, "history", 0, "val_ppl"), 0.5, "history val_ppl is 0.5"),
    "rnn history lr over the run's": (RNN, _c(RNN_LOSER, "history", 0, "lr"), 1e308, "history lr is 1e+308"),
    "rnn history lr -1": (RNN, _c(RNN_LOSER, "history", 0, "lr"), -1.0, "history lr is -1"),
    "rnn noise on perplexity 0.2": (
        RNN,
        ["run", "noise"],
        {"metric": "perplexity", "std": 1.0, "seeds": 2, "mean": 0.2},
        "noise mean is 0.2",
    ),
}

ACCEPTED = {  # what a search does write
    "a failed candidate": (
        CNN,
        _c(CNN_LOSER),
        {
            **CNN["candidates"][CNN_LOSER],
            "status": "failed",
            "accuracy": None,
            "score": None,
            "epochs": 0,
            "history": [],
            "stop_reason": "build_failed",
            "error": "RuntimeError: out of memory",
        },
    ),
    "a rnn candidate failed on a NaN loss": (
        RNN,
        _c(RNN_LOSER),
        {
            **RNN["candidates"][RNN_LOSER],
            "status": "failed",
            "perplexity": None,
            "score": None,
            "stop_reason": "nan",
            "history": [{**RNN["candidates"][RNN_LOSER]["history"][0], "val_loss": NAN, "val_ppl": float("inf")}],
        },
    ),
    "a train perplexity over e^700": (RNN, _c(RNN_LOSER, "history", 0, "train_ppl"), float("inf")),
    "a NaN running loss": (RNN, _c(RNN_LOSER, "history", 0, "train_loss_ema"), NAN),
    "measured noise": (
        CNN,
        ["run", "noise"],
        {"metric": "accuracy", "std": 0.012, "seeds": 3, "mean": 0.3, "values": [0.29, 0.3, 0.31]},
    ),
    "noise not measured": (
        RNN,
        ["run", "noise"],
        {"metric": "perplexity", "std": None, "seeds": 1, "mean": 1029.08, "values": [1029.08]},
    ),
}


def _files(store: Store) -> dict:
    return {p.name: p.read_bytes() for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)}


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "runs.db")
    import_bundle(s, json.dumps(CNN).encode(), "good.json")
    return s


@pytest.mark.parametrize("case", REFUSED)
def test_an_impossible_number_is_refused_and_changes_no_byte(store, case):
    sample, path, value, fragment = REFUSED[case]
    before = _files(store)
    with pytest.raises(BundleError) as err:
        import_bundle(store, _edit(sample, path, value), "evil.json")
    message = str(err.value)
    assert "\n" not in message and message.startswith("evil.json: ") and fragment in message, message
    assert _files(store) == before


@pytest.mark.parametrize(
    "case", ["accuracy 1e308", "accuracy NaN", "a 4000-digit integer", "a 5000-digit integer", "config nodes as text"]
)
def test_the_cli_refuses_it_in_one_line(store, tmp_path, capsys, case):
    sample, path, value, fragment = REFUSED[case]
    bundle = tmp_path / "evil.json"
    bundle.write_bytes(_edit(sample, path, value))
    before = _files(store)
    code, err = cli(capsys, "import-run", bundle, "--store", store.path)
    assert code == 2 and fragment in only_line(err), err
    assert _files(store) == before


@pytest.mark.parametrize("case", ACCEPTED)
def test_what_a_search_writes_still_imports(store, case):
    sample, path, value = ACCEPTED[case]
    run_id = import_bundle(store, _edit(sample, path, value), "fine.json")
    assert store.get_run(run_id).task == sample["run"]["task"]


def test_both_samples_import_unchanged(tmp_path):
    s = Store(tmp_path / "runs.db")
    for sample in (CNN, RNN):
        run_id = import_bundle(s, json.dumps(sample).encode(), "sample.json")
        assert [st.score for st in s.steps(run_id)] == [st["score"] for st in sample["steps"]]


def test_every_refused_case_names_an_existing_number():
    """Guard against a case that edits a key the sample lacks (and so tests nothing)."""
    assert REFUSED
    for name, (sample, path, _, _) in REFUSED.items():
        node = sample
        for key in path[:-1]:
            node = node[key]
        assert path[-1] in node or path[-1] in ("grad_norm", "extra"), name
    assert Path(SAMPLE_DIR).is_dir()
