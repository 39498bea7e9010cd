"""One precision vocabulary for every entry point: Lightning's ``precision`` names.

``32-true`` (float32), ``bf16-mixed`` and ``16-mixed`` (``torch.autocast`` with bfloat16 / float16, weights
float32) are what the Lightning Trainer (main.py), validation.py, predict.py and benchmark.py accept and
record. The spellings ``32``/``fp32``, ``bf16`` and ``16``/``fp16`` are aliases: they are mapped to the
Lightning name (and the record shows the Lightning name).
"""

from __future__ import annotations

import contextlib

#: Lightning precision names -> autocast dtype name (None = plain float32); torch is imported only by autocast
PRECISIONS: dict[str, str | None] = {"32-true": None, "bf16-mixed": "bfloat16", "16-mixed": "float16"}
#: accepted other spellings -> Lightning name
ALIASES = {"32": "32-true", "fp32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed", "fp16": "16-mixed"}


def canonical_precision(value) -> str:
    """The Lightning name of ``value`` (``fp32`` -> ``32-true``, ``bf16`` -> ``bf16-mixed``, ``fp16`` ->
    ``16-mixed``; ints 32/16 too).

    Raises:
        ValueError: an unknown value (the accepted names and aliases are listed).
    """
    key = str(value).strip().lower()
    key = ALIASES.get(key, key)
    if key not in PRECISIONS:
        raise ValueError(f"precision={value!r} is not supported; use one of {list(PRECISIONS)} (aliases: {ALIASES})")
    return key


def autocast(precision, device):
    """The autocast context Lightning uses for ``precision`` on ``device`` (``nullcontext`` for ``32-true``).

    Raises:
        ValueError: unknown precision (see :func:`canonical_precision`).
    """
    import torch

    dtype = PRECISIONS[canonical_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, dtype))
