"""Model size, FLOPs, peak memory and hardware description for benchmark records.

* Params: ``sum(p.numel())`` over ``model.parameters()`` (total and ``requires_grad``).
* FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one eager fp32 forward at the benchmark
  resolution. Its convention: a multiply-accumulate counts as 2 FLOPs (conv, matmul, attention); ops
  without a formula (element-wise, interpolate, pooling, softmax) count 0. Many papers (fvcore,
  mmcv ``get_model_complexity_info``) report MACs as "FLOPs", i.e. half of this number. A pure-PyTorch
  stand-in for a fused kernel (SegMAN's neighbourhood attention and selective scan), built from gathers and
  element-wise ops the counter does not see, reports its kernel's count itself (:func:`count_kernel_flops`), by the
  formula the kernel's own counter uses (NATTEN's and VMamba's fvcore handles), in the same convention.
* Memory: two fields with one meaning each, on CPU and CUDA alike (:func:`peak_memory`):
  ``peak_mib``, the peak total during the block, weights included, and ``forward_mib``, the peak growth
  during the block over what was held at its start (activations, workspaces, outputs). CUDA: the caching
  allocator's ``max_memory_allocated`` (after ``reset_peak_memory_stats``) and ``memory_allocated`` at the
  start (tensors only; the CUDA context is not counted). CPU: the process's resident set, peak ``VmHWM``
  (reset through ``/proc/self/clear_refs``) and ``VmRSS`` at the start (the interpreter and libraries are
  part of the total); where the peak cannot be reset (not Linux) ``getrusage`` ``ru_maxrss`` is used and the
  kind says so. Freed heap blocks stay resident in glibc and would hide the growth of a later forward, so
  the block starts with ``malloc_trim(0)`` (a one-off release of free memory, no lasting setting).
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOPS_COUNTER = "torch.utils.flop_counter"
FLOPS_CONVENTION = "1 MAC = 2 FLOPs"
MIB = 1024**2

_KERNEL_FLOPS: ContextVar[list[int] | None] = ContextVar("kernel_flops", default=None)


def count_kernel_flops(flops: int) -> None:
    """Add ``flops`` (1 MAC = 2 FLOPs) to the :func:`count_flops` running in this context; nothing otherwise.

    For pure-PyTorch stand-ins of fused kernels whose work ``FlopCounterMode`` cannot see (gathers and element-wise
    products have no formula there); the caller gives its kernel's formula and must not also run ops the counter
    counts.
    """
    tally = _KERNEL_FLOPS.get()
    if tally is not None:
        tally.append(int(flops))


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
    """FLOPs of ``model(x)`` by ``torch.utils.flop_counter`` (1 MAC = 2 FLOPs), plus what pure-PyTorch kernels
    report through :func:`count_kernel_flops`.

    Args:
        model: module in eval mode.
        x: float[N, 3, H, W] input at the benchmark resolution (the meta device works: nothing is computed).

    Returns:
        total FLOPs of one call (int, all N images).
    """
    counter, tally = FlopCounterMode(display=False), []
    token = _KERNEL_FLOPS.set(tally)
    try:
        with counter:
            model(x)
    finally:
        _KERNEL_FLOPS.reset(token)
    return int(counter.get_total_flops()) + sum(tally)


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


def _glibc():
    """glibc handle for ``malloc_trim`` (None elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@dataclass
class PeakMemory:
    """Result of :func:`peak_memory` (MiB): ``peak_mib`` peak total incl. weights, ``forward_mib`` peak growth
    during the block, ``kind`` what was measured (``cuda_allocated``, ``cpu_rss``, ``cpu_rss_lifetime``)."""

    peak_mib: float = float("nan")
    forward_mib: float = float("nan")
    kind: str = ""


def reset_peak_memory(device: torch.device | str) -> bool:
    """Start a new peak-memory count on ``device``: CUDA peak stats, or the process's peak RSS (Linux ``VmHWM``,
    reset through ``/proc/self/clear_refs``).

    Returns:
        whether the peak could be reset (False on a CPU without ``/proc/self/clear_refs``: the peak is then the
        process's lifetime peak).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    return _reset_peak_rss()


def read_peak_memory(device: torch.device | str, reset: bool = True) -> tuple[float, str]:
    """(peak MiB, kind) since :func:`reset_peak_memory`: CUDA ``max_memory_allocated`` (``cuda_allocated``), the
    process's peak RSS ``VmHWM`` (``cpu_rss``), or with ``reset`` False / no ``/proc`` the lifetime peak
    ``ru_maxrss`` (``cpu_rss_lifetime``)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / MIB, "cuda_allocated"
    kib = _status_kib("VmHWM") if reset else None
    if kib is not None:
        return kib / 1024.0, "cpu_rss"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "cpu_rss_lifetime"


@contextmanager
def peak_memory(device: torch.device):
    """Measure the memory of the ``with`` block on ``device``; yields a :class:`PeakMemory` filled on exit.

    See the module docstring for the two fields. Nothing process-wide is changed (``malloc_trim`` only
    returns free memory to the OS).
    """
    device = torch.device(device)
    out = PeakMemory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        reset_peak_memory(device)
        start = torch.cuda.memory_allocated(device) / MIB
        yield out
        torch.cuda.synchronize(device)
        out.peak_mib, out.kind = read_peak_memory(device)
        out.forward_mib = out.peak_mib - start
        return
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    reset = reset_peak_memory(device)
    start_kib = _status_kib("VmRSS") if reset else None
    if start_kib is None:
        reset, start_kib = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield out
    out.peak_mib, out.kind = read_peak_memory(device, reset)
    out.forward_mib = max(out.peak_mib - start_kib / 1024.0, 0.0)


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


#: CPU flags that change which kernels run (and so speed and bf16/int8 numerics): part of the hardware profile
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def hardware_profile(device: torch.device | str = "cpu") -> str:
    """What a figure's speed depends on, as one string: the GPU name, or the CPU model with its ISA flags.

    Two measurements are like for like only with equal profiles (``benchmark.py compare``, deploy tables),
    e.g. ``"AMD EPYC [avx2 avx512_bf16 avx512_vnni avx512f]"`` or ``"NVIDIA H200"``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    isa = sorted(cpu_flags() & set(ISA_FLAGS))
    return f"{cpu_name()} [{' '.join(isa)}]" if isa else cpu_name()


def hardware_info(device: torch.device) -> dict:
    """Device description for a record: ``device``, ``device_name``, ``hardware``, ``hardware_profile``
    (:func:`hardware_profile`), ``threads``, versions."""
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
        "hardware_profile": hardware_profile(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda if device.type == "cuda" else None,
        "bf16_cpu": "avx512_bf16" in cpu_flags() or "amx_bf16" in cpu_flags(),
    }
