"""One precision vocabulary for every entry point: Lightning's ``precision`` names.

``32-true`` (float32), ``bf16-mixed`` and ``16-mixed`` (``torch.autocast`` with bfloat16 / float16, weights
float32) are what the Lightning Trainer (main.py), validation.py, predict.py and benchmark.py accept and
record. The spellings ``32``/``fp32``, ``bf16`` and ``16``/``fp16`` are aliases: they are mapped to the
Lightning name (and the record shows the Lightning name). ``int8`` (:data:`QUANTIZED`) is no autocast dtype:
only backends that declare it (benchmark.py/predict.py ``backend=openvino``, NNCF post-training quantisation)
accept it, through ``canonical_precision(value, quantized=True)``.

``auto`` picks for the machine: ``bf16-mixed`` where the device computes bfloat16 natively (a CUDA GPU with bf16;
a CPU with AVX-512 BF16 or AMX), ``32-true`` elsewhere, where bf16 autocast is emulated and several times slower
than float32 (see :func:`native_bf16`). It is resolved when the config is resolved, so records and
``hparams.yaml`` show the Lightning name that ran.
"""

from __future__ import annotations

import contextlib

#: Lightning precision names -> autocast dtype name (None = plain float32); torch is imported only by autocast
PRECISIONS: dict[str, str | None] = {"32-true": None, "bf16-mixed": "bfloat16", "16-mixed": "float16"}
#: accepted other spellings -> Lightning name
ALIASES = {"32": "32-true", "fp32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed", "fp16": "16-mixed"}
#: quantised precisions: accepted only by backends that declare them (never an autocast dtype)
QUANTIZED = ("int8",)
#: the machine-dependent choice (:func:`native_bf16`)
AUTO = "auto"


def native_bf16(device=None) -> bool:
    """Whether ``device`` (default: ``cuda`` when available, else ``cpu``) computes bfloat16 natively.

    CUDA: :func:`torch.cuda.is_bf16_supported`. CPU: AVX-512 BF16 or AMX, read with ``torch.cpu``'s
    ``_is_avx512_bf16_supported`` / ``_is_amx_tile_supported`` (torch 2.14 has no public API for this; these are
    the checks its oneDNN kernels dispatch on; a torch without them counts as no native bf16).
    """
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if dev.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def canonical_precision(value, quantized: bool = False) -> str:
    """The Lightning name of ``value`` (``fp32`` -> ``32-true``, ``bf16`` -> ``bf16-mixed``, ``fp16`` ->
    ``16-mixed``; ints 32/16 too; ``auto`` -> ``bf16-mixed`` if :func:`native_bf16` else ``32-true``); with
    ``quantized=True`` also a :data:`QUANTIZED` name (``int8``).

    Raises:
        ValueError: an unknown value, or a quantised one without ``quantized`` (the accepted names listed).
    """
    key = str(value).strip().lower()
    key = ALIASES.get(key, key)
    if key == AUTO:
        return "bf16-mixed" if native_bf16() else "32-true"
    if key in QUANTIZED and quantized:
        return key
    if key not in PRECISIONS:
        raise ValueError(
            f"precision={value!r} is not supported; use one of {[*PRECISIONS, AUTO]} (aliases: {ALIASES})"
            + (f"; {key} is accepted only by backends that declare it (backend=openvino)" if key in QUANTIZED else "")
        )
    return key


def autocast(precision, device):
    """The autocast context Lightning uses for ``precision`` on ``device`` (``nullcontext`` for ``32-true``).

    Raises:
        ValueError: unknown precision, or a quantised one such as ``int8`` (see :func:`canonical_precision`).
    """
    import torch

    dtype = PRECISIONS[canonical_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, dtype))
