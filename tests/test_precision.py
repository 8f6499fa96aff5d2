"""--precision: what auto resolves to (CPU flags, CUDA capability without emulation), and where the
setting is stored and shown. That bf16 changes a candidate's record by less than the step-0
noise is tests/test_search.py::test_bf16_records_are_within_the_step0_noise (on the demo runs)."""

from __future__ import annotations

import json

import pytest
import torch

import core.device as device_mod
from core.device import cuda_amp_dtype, cuda_bf16_native, resolve_precision
from core.errors import ConfigError
from core.search.config import SearchConfig, preset_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(device_mod, "cpu_bf16_native", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"
    monkeypatch.setattr(device_mod, "cpu_bf16_native", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16" and resolve_precision("fp32", CPU) == "fp32"
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", CPU)


def test_cpu_flags_fall_back_to_proc_cpuinfo(monkeypatch):
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    monkeypatch.setattr(device_mod, "_cpuinfo_flags", lambda: {"avx2", "amx_bf16"})
    assert device_mod.cpu_bf16_native()
    monkeypatch.setattr(device_mod, "_cpuinfo_flags", lambda: {"avx2", "avx512f"})
    assert not device_mod.cpu_bf16_native()


@pytest.mark.parametrize("capability, native", [((7, 0), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_cuda_bf16_needs_capability_8_not_emulation(monkeypatch, capability, native):
    """torch.cuda.is_bf16_supported() says yes on V100/T4 (emulated); the capability decides."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    assert cuda_bf16_native(CUDA) is native
    assert resolve_precision("auto", CUDA) == ("bf16" if native else "fp32")
    assert cuda_amp_dtype(CUDA) is (torch.bfloat16 if native else torch.float16)
    from core.training.cnn import amp_dtype
    from core.training.config import train_config

    assert amp_dtype(train_config("cnn"), CUDA) is (torch.bfloat16 if native else torch.float16)
    assert amp_dtype(train_config("cnn", precision="fp32"), CUDA) is None
    assert amp_dtype(train_config("cnn", precision="bf16"), CUDA) is torch.bfloat16


def test_setting_is_stored_and_old_runs_stay_fp32():
    cfg = preset_config("cnn", "demo", precision="bf16")
    assert SearchConfig.from_dict(cfg.to_dict()).precision == "bf16"
    assert preset_config("rnn", "paper").precision == "auto"
    old = {k: v for k, v in cfg.to_dict().items() if k != "precision"}
    assert SearchConfig.from_dict(old).precision == "fp32"  # recorded before the setting: fp32
    with pytest.raises(ConfigError, match="precision"):
        preset_config("cnn", "demo", precision="half")


def test_cli_flag_reaches_the_run_record_and_show(tmp_path, capsys, monkeypatch):
    from core.cli.main import main

    store = str(tmp_path / "runs.db")
    assert main(["search", "cnn", "--preset", "demo", "--precision", "fp32", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["precision"] == "fp32"
    assert (
        main(
            [
                "search",
                "cnn",
                "--preset",
                "demo",
                "--precision",
                "bf16",
                "--max-steps",
                "1",
                "--k",
                "2",
                "--noise-seeds",
                "1",
                "--epochs",
                "1",
                "--store",
                store,
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["show", "1", "--store", store, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["config"]["precision"] == "bf16" and run["device"].endswith(", bf16")
    assert main(["show", "1", "--store", store]) == 0
    assert "precision bf16" in capsys.readouterr().out
    assert main(["search", "cnn", "--precision", "fp8", "--store", store]) == 2
    assert capsys.readouterr().err.startswith("error:")
