"""The two memory fields against a known allocation, and no process-wide setting left behind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarking.runner import run_benchmark
from core.measure import peak_memory
from tests.conftest import compose_cfg

MIB = 2**20


class Holds256MiB(nn.Module):
    """Weights: one 256 MiB float32 buffer. Forward: allocates (and fills) a 128 MiB temporary."""

    def __init__(self):
        super().__init__()
        self.register_buffer("big", torch.ones(256 * MIB // 4))

    def forward(self, x):
        tmp = torch.full((128 * MIB // 4,), 2.0, device=x.device)
        return {"out": x[:, :1] * tmp[-1]}


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
def test_memory_fields_against_a_256_mib_buffer(device):
    model = Holds256MiB().to(device)
    x = torch.zeros(1, 3, 8, 8, device=device)
    for _ in range(2):  # the second forward reuses freed memory: its growth must still show
        with peak_memory(torch.device(device)) as mem:
            model(x)
        assert mem.forward_mib == pytest.approx(128, abs=8), mem
        if device == "cuda":  # allocator: weights + input + the temporary + output, nothing else
            assert mem.kind == "cuda_allocated" and mem.peak_mib == pytest.approx(256 + 128, abs=1)
        else:  # resident set: the process (interpreter, libraries) + weights + the temporary
            assert mem.kind == "cpu_rss" and mem.peak_mib >= 256 + 128
            assert mem.peak_mib - mem.forward_mib >= 256


def test_no_thread_setting_survives_a_measurement(tmp_path):
    before = torch.get_num_threads()
    fast = ["resolution=32x32", "warmup=1", "iterations=1", "device=cpu", "count_flops=false"]
    model = ["model._target_=tests.benchmarking.fakes.CountingModel"]
    rec, _ = run_benchmark(compose_cfg([*model, *fast, f"threads={before + 1}"], config_name="benchmark"), tmp_path)
    assert rec.status == "ok" and rec.threads == before + 1
    assert torch.get_num_threads() == before
    bad = ["checkpoint=/nonexistent.ckpt", f"threads={before + 1}"]
    rec, _ = run_benchmark(compose_cfg([*model, *fast, *bad], config_name="benchmark"), tmp_path)
    assert rec.status == "failed" and torch.get_num_threads() == before
