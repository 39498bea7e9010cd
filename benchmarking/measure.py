"""Model size, FLOPs, peak memory and hardware description for benchmark records.

* Params: ``sum(p.numel())`` over ``model.parameters()`` (total and ``requires_grad``).
* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one eager fp32 forward at the benchmark
  resolution. Its convention: a multiply-accumulate counts as 2 FLOPs (conv, matmul, attention); ops
  without a formula (element-wise, interpolate, pooling, softmax) count 0. Many papers (fvcore,
  mmcv ``get_model_complexity_info``) report MACs as "FLOPs", i.e. half of this number.
* Memory: on CUDA ``torch.cuda.max_memory_allocated`` (after ``reset_peak_memory_stats``; includes the
  weights); on CPU the growth of the process's peak resident set size (Linux ``VmHWM``, reset through
  ``/proc/self/clear_refs``; falls back to ``getrusage`` ``ru_maxrss``, which cannot be reset) over the
  RSS at the start of the measured block, i.e. activations and workspaces, not the weights. glibc keeps freed
  blocks and raises its mmap threshold after frees, which hides the peak of a later forward; the measured block
  therefore runs with ``mallopt(M_MMAP_THRESHOLD, 64 KiB)`` after ``malloc_trim(0)`` (threshold set to glibc's
  32 MiB ceiling afterwards), so the RSS follows the tensors.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOPS_COUNTER = "torch.utils.flop_counter"
FLOPS_CONVENTION = "1 MAC = 2 FLOPs"
MIB = 1024**2


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts of ``model`` (shared tensors counted once)."""
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


@torch.no_grad()
def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of ``model(x)`` by ``torch.utils.flop_counter`` (1 MAC = 2 FLOPs).

    Args:
        model: module in eval mode.
        x: float[N, 3, H, W] input at the benchmark resolution.

    Returns:
        total FLOPs of one call (int, all N images).
    """
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return int(counter.get_total_flops())


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _glibc():
    """glibc handle for ``mallopt``/``malloc_trim`` (None elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@dataclass
class PeakMemory:
    """Result of :func:`peak_memory`: ``mib`` (float, MiB) and ``kind`` (what was measured)."""

    mib: float = float("nan")
    kind: str = ""


@contextmanager
def peak_memory(device: torch.device):
    """Measure the peak memory of the ``with`` block on ``device``; yields a :class:`PeakMemory`.

    CUDA: ``torch.cuda.max_memory_allocated`` (``kind="cuda_max_allocated"``). CPU: peak RSS minus the
    RSS at entry (``kind="cpu_peak_rss_delta"``; ``"cpu_peak_rss_delta_lifetime"`` when the peak could not
    be reset and the process-lifetime ``ru_maxrss`` was used).
    """
    out = PeakMemory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        torch.cuda.synchronize(device)
        out.mib, out.kind = torch.cuda.max_memory_allocated(device) / MIB, "cuda_max_allocated"
        return
    libc = _glibc()
    if libc is not None:  # large blocks straight from/to the OS, cached heap released: RSS follows the tensors
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.malloc_trim(0)
    reset = _reset_peak_rss()
    start_kib = _status_kib("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        yield out
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, 32 * MIB)  # glibc's dynamic-threshold ceiling on 64-bit
    if reset and start_kib is not None:
        peak = _status_kib("VmHWM") or start_kib
        out.kind = "cpu_peak_rss_delta"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out.kind = "cpu_peak_rss_delta_lifetime"
    out.mib = max(peak - (start_kib or 0), 0) / 1024.0


def resolve_device(name: str | None) -> torch.device:
    """``"auto"``/None -> cuda if available else cpu; otherwise ``torch.device(name)``.

    Raises:
        ValueError: a CUDA device is asked for but CUDA is not available.
    """
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} asked for but torch.cuda.is_available() is False")
    return dev


def cpu_name() -> str:
    """CPU model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """CPU feature flags (``avx512_bf16``, ``amx_bf16``, ...); empty where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def hardware_info(device: torch.device) -> dict:
    """Device description for a record: ``device``, ``device_name``, ``hardware``, ``threads``, versions."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        hardware = name
    else:
        name = cpu_name()
        hardware = f"{name} ({torch.get_num_threads()} threads)"
    return {
        "device": str(device),
        "device_name": name,
        "hardware": hardware,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if device.type == "cuda" else None,
        "bf16_cpu": "avx512_bf16" in cpu_flags() or "amx_bf16" in cpu_flags(),
    }
