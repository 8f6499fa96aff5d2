"""Real-data tier: one shrink step on the shared CIFAR-10 and PTB proxies (skipped without ../shared)."""

import math

from helpers import CIFAR_DIR, PTB_DIR, needs

from core.search.config import preset_config
from core.search.loop import create_run, run_search
from core.store.runs import RunStatus, Store


@needs(CIFAR_DIR, "CIFAR-10 python batches")
def test_one_cnn_shrink_step_on_real_cifar10(store_path):
    # The paper's proxy network and training rules, shortened: 4 nodes, 2 candidates, 1 epoch,
    # a 200/50-per-class slice of the proxy split so the tier fits the suite's time budget.
    cfg = preset_config(
        "cnn",
        "paper",
        data=f"cifar10:{CIFAR_DIR}",
        nodes=4,
        k=2,
        epochs=1,
        max_steps=1,
        per_class_train=200,
        per_class_val=50,
        noise_seeds=1,  # the noise has its own tests (test_noise.py); here one step is the point
        threads=1,
    )
    store = Store(store_path)
    run_id = create_run(store, cfg)
    assert run_search(store, run_id) == RunStatus.FINISHED, store.get_run(run_id).error
    steps, cands = store.steps(run_id), store.candidates(run_id, 1)
    assert [s.step for s in steps] == [0, 1] and steps[1].edges < steps[0].edges
    assert len(cands) == 2 and all(c.status == "ok" and c.epochs == 1 for c in cands)
    assert all(0.1 < c.accuracy <= 1 and c.macs > 1e6 for c in cands)  # 32x32 RGB, 10 classes


@needs(PTB_DIR, "PTB proxy corpus")
def test_one_rnn_shrink_step_on_real_ptb_proxy(store_path):
    # Paper RNN settings (e=h=100, batch 128, BPTT 35, lr 20), one epoch capped at 10 batches.
    cfg = preset_config(
        "rnn", "paper", data=f"ptb:{PTB_DIR}", nodes=4, k=2, epochs=1, max_steps=1, max_batches=10, threads=1,
        noise_seeds=1,
    )  # fmt: skip
    store = Store(store_path)
    run_id = create_run(store, cfg)
    assert run_search(store, run_id) == RunStatus.FINISHED, store.get_run(run_id).error
    cands = store.candidates(run_id, 1)
    assert len(cands) == 2 and all(c.status == "ok" and math.isfinite(c.perplexity) for c in cands)
    assert all(c.perplexity < 6645 for c in cands)  # better than uniform over the proxy vocabulary
