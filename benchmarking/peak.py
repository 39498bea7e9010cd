"""``python benchmark.py peak``: the matmul peaks of this CPU per precision, stored for ``% of peak`` columns.

    python benchmark.py peak [precisions=[fp32,bf16,int8]] [threads=N] [size=4096] [warmup=2] [repeat=5]
                             [LOGDIR=logs]

Each precision times one square matmul of ``size`` (M = N = K) on ``threads`` threads (default: torch's thread
count, what ``benchmark.py`` uses without ``threads=``): ``warmup`` untimed calls, then the median of ``repeat``
timed calls; FLOPs = 2 * M * N * K (1 MAC = 2 FLOPs), so the figure is TFLOP/s (TOPS for int8):

* ``fp32``  ``torch.matmul`` on float32 (oneDNN / MKL sgemm);
* ``bf16``  ``torch.matmul`` on bfloat16 (oneDNN AVX-512 BF16 / AMX kernels);
* ``int8``  ``torch.ao.nn.quantized.Linear`` (uint8 activations x int8 weights -> uint8) with the ``onednn``
  quantised engine (VNNI / AMX kernels; ``x86`` where oneDNN is missing). It is torch's public int8 GEMM; on an
  AVX-512 VNNI CPU it runs as fast as the private ``torch._int_mm`` and faster than ONNX Runtime's
  ``MatMulInteger``, so no private API is needed. Its quantised tensors warn that they are deprecated in torch 2.14,
  a warning this command silences.

A precision the CPU lacks natively (:data:`benchmarking.peak_store.NATIVE_FLAGS`: bf16 needs ``avx512_bf16`` or
``amx_bf16``, int8 ``avx512_vnni``, ``avx_vnni`` or ``amx_int8``) is refused in one line naming the missing flags
(exit 1); without ``precisions=`` the native ones are measured. The results go to the peaks file of this hardware
profile (:mod:`benchmarking.peak_store`) only when every asked precision was measured.
"""

from __future__ import annotations

import datetime as _dt
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from benchmarking.peak_store import NATIVE_FLAGS, PEAK_PRECISIONS, store_peaks
from core.errors import one_line
from core.measure import cpu_flags, hardware_profile

#: the command's keys and their defaults (None: see the module docstring)
PEAK_KEYS = {"precisions": None, "threads": None, "size": "4096", "warmup": "2", "repeat": "5", "LOGDIR": None}


def missing_flags(precisions: Sequence[str], flags: set[str] | None = None) -> dict[str, tuple[str, ...]]:
    """``{precision: the flags of which one is needed}`` for each of ``precisions`` this CPU (``flags``, default
    :func:`core.measure.cpu_flags`) does not compute natively."""
    flags = cpu_flags() if flags is None else flags
    return {p: NATIVE_FLAGS[p] for p in precisions if NATIVE_FLAGS[p] and not set(NATIVE_FLAGS[p]) & flags}


def _matmul(dtype_name: str, size: int) -> tuple[Callable[[], object], str]:
    import torch

    dtype = getattr(torch, dtype_name)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g).to(dtype) for _ in range(2))
    return (lambda: torch.matmul(a, b)), f"torch.matmul {dtype_name}"


def _int8_linear(size: int) -> tuple[Callable[[], object], str]:
    import torch
    import torch.ao.nn.quantized as nnq

    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("onednn", "x86", "fbgemm") if e in engines), None)
    if engine is None:
        raise RuntimeError(f"torch has no x86 quantised engine (supported: {engines})")
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine  # the weight is packed for the engine set at construction
    try:
        g = torch.Generator().manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch 2.14: quantised tensors are deprecated
            layer = nnq.Linear(size, size, bias_=False)
            w = torch.quantize_per_tensor(torch.randn(size, size, generator=g), 0.02, 0, torch.qint8)
            layer.set_weight_bias(w, None)
            x = torch.quantize_per_tensor(torch.rand(size, size, generator=g), 1 / 255, 0, torch.quint8)
    finally:
        torch.backends.quantized.engine = before

    def run():
        saved = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine
        try:
            return layer(x)
        finally:
            torch.backends.quantized.engine = saved

    return run, f"torch.ao.nn.quantized.Linear uint8 x int8 ({engine} engine)"


def matmul_peak(precision: str, size: int = 4096, warmup: int = 2, repeat: int = 5, threads: int | None = None) -> dict:
    """Time ``repeat`` square matmuls of ``size`` in ``precision`` after ``warmup`` untimed ones.

    Args:
        precision: ``fp32`` (float32 operands), ``bf16`` (bfloat16) or ``int8`` (uint8 x int8, see the module
            docstring).
        size: M = N = K of the matmul (operands ``size x size``).
        warmup: untimed calls first (>= 0).
        repeat: timed calls (>= 1); the figure is their median.
        threads: intra-op threads during the measurement (default: the current ``torch.get_num_threads()``);
            the previous count is restored.

    Returns:
        ``{"tflops": float (TFLOP/s, TOPS for int8), "runs_tflops": [float], "kernel": str, "size": int, "warmup":
        int, "repeat": int, "threads": int, "flops_per_call": 2 * size**3, "torch_version": str, "timestamp": str,
        "load_before": float | None, "load_after": float | None}`` (1-minute load averages).

    Raises:
        ValueError: an unknown precision or a bad size/warmup/repeat.
        RuntimeError: torch has no x86 quantised engine (int8).
    """
    import torch

    if precision not in PEAK_PRECISIONS:
        raise ValueError(f"precision {precision!r}: valid {list(PEAK_PRECISIONS)}")
    if size < 1 or warmup < 0 or repeat < 1:
        raise ValueError(f"size must be >= 1, warmup >= 0, repeat >= 1; got {size}, {warmup}, {repeat}")
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        build = {"fp32": lambda: _matmul("float32", size), "bf16": lambda: _matmul("bfloat16", size)}
        run, kernel = build.get(precision, lambda: _int8_linear(size))()
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(saved)
    flops = 2 * size**3
    return {
        "tflops": flops / statistics.median(times) / 1e12,
        "runs_tflops": [flops / t / 1e12 for t in times],
        "kernel": kernel,
        "size": size,
        "warmup": warmup,
        "repeat": repeat,
        "threads": used,
        "flops_per_call": flops,
        "torch_version": torch.__version__,
        "timestamp": _dt.datetime.now().isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def parse_peak_args(argv: Sequence[str]) -> dict:
    """The ``key=value`` arguments of ``benchmark.py peak`` (:data:`PEAK_KEYS`) with their defaults: ``precisions``
    a list of names (or None), ``threads``/``size``/``warmup``/``repeat`` ints, ``LOGDIR`` a string (or None).

    Raises:
        ValueError: an unknown key, an unknown precision, a value that is no integer, threads < 1 (one line).
    """
    opts = dict(PEAK_KEYS)
    for arg in argv:
        key, sep, value = arg.lstrip("-").partition("=")
        if not sep or key not in opts:
            raise ValueError(f"bad argument {arg!r}; use key=value with key in {sorted(opts)}")
        opts[key] = value
    if opts["precisions"] is not None:
        names = [p.strip() for p in opts["precisions"].strip("[]").split(",") if p.strip()]
        bad = [p for p in names if p not in PEAK_PRECISIONS]
        if bad or not names:
            raise ValueError(f"precisions={opts['precisions']}: unknown {bad}; valid {list(PEAK_PRECISIONS)}")
        opts["precisions"] = names
    for key in ("threads", "size", "warmup", "repeat"):
        if opts[key] is not None:
            try:
                opts[key] = int(opts[key])
            except ValueError:
                raise ValueError(f"{key}={opts[key]}: not an integer") from None
    if opts["threads"] is not None and opts["threads"] < 1:
        raise ValueError(f"threads={opts['threads']}: must be >= 1")
    return opts


def run_peak(argv: Sequence[str]) -> int:
    """``benchmark.py peak`` with ``argv`` (``key=value``, :data:`PEAK_KEYS`): one line per precision and the
    peaks file. Returns 0, 1 (a precision this CPU lacks natively, or a failed measurement: one line, nothing
    stored) or 2 (a bad argument: one line)."""
    from benchmarking.peak_store import default_peaks_dir

    try:
        opts = parse_peak_args(argv)
    except ValueError as e:
        print(f"benchmark.py peak: {e}", file=sys.stderr)
        return 2
    flags = cpu_flags()
    asked = opts["precisions"]
    precisions = asked or [p for p in PEAK_PRECISIONS if p not in missing_flags([p], flags)]
    missing = missing_flags(precisions, flags)
    if missing:
        need = "; ".join(f"{p} needs {' or '.join(f)}" for p, f in missing.items())
        print(f"benchmark.py peak: not native on this CPU ({hardware_profile('cpu')}): {need}", file=sys.stderr)
        return 1
    import torch

    threads = opts["threads"] or torch.get_num_threads()
    results = {}
    for p in precisions:
        try:
            results[p] = matmul_peak(p, opts["size"], opts["warmup"], opts["repeat"], threads)
        except Exception as e:  # nothing is stored for a failed run
            print(f"benchmark.py peak: {p} failed, nothing stored: {one_line(e)}", file=sys.stderr)
            return 1
        r = results[p]
        unit = "TOPS" if p == "int8" else "TFLOP/s"
        print(
            f"{p}: {r['tflops']:.3f} {unit} ({r['kernel']}, {r['size']}^3, median of {r['repeat']} after "
            f"{r['warmup']} warm-up, {r['threads']} threads)"
        )
    folder = default_peaks_dir() if opts["LOGDIR"] is None else os.path.join(opts["LOGDIR"], "benchmark", "peaks")
    try:
        path = store_peaks(folder, hardware_profile("cpu"), threads, results)
    except (OSError, ValueError) as e:
        print(f"benchmark.py peak: nothing stored: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0
