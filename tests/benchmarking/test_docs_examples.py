"""The benchmark-backend example of docs/extending.md, executed as written.

The ``python`` block under "Add a benchmark backend" is run in the namespace of
:mod:`benchmarking.backends.registry` (the names it uses: ``register_backend``, ``_torch_runner``, ``Runner``,
``nn``, ``torch``); the backend it registers must accept ``precision=fp32`` and ``precision=bf16`` (given as the
command line gives them, as aliases) and refuse ``fp16``, as the page says. Every
``register_backend(..., precisions=...)`` on the page names Lightning precisions (what :func:`core.precision.canonical_precision` returns), since aliases such as ``fp32`` there match no request.
"""

from __future__ import annotations

import ast
import re

import pytest
import torch
from torch import nn

from benchmarking import backends
from benchmarking.backends import build_runner, check_precision, registry
from core.precision import canonical_precision
from tests.conftest import REPO

PAGE = REPO / "docs" / "extending.md"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def documented_backend():
    """Register the page's example backend; yields its name and removes it again."""
    blocks = _python_blocks(_section(PAGE.read_text(), "Add a benchmark backend"))
    assert len(blocks) == 1, f"{PAGE}: expected one python block under 'Add a benchmark backend', got {len(blocks)}"
    before = set(backends.BACKENDS)
    namespace = dict(vars(registry))
    exec(compile(blocks[0], str(PAGE), "exec"), namespace)
    added = set(backends.BACKENDS) - before
    assert len(added) == 1, f"the example registers one backend, got {sorted(added)}"
    name = added.pop()
    try:
        yield name
    finally:
        backends.BACKENDS.pop(name, None)
        backends.BACKEND_PRECISIONS.pop(name, None)
        backends.EXPORTED.discard(name)


def test_documented_backend_accepts_the_documented_precisions(documented_backend, monkeypatch):
    assert documented_backend == "compile_max"
    assert check_precision(documented_backend, "fp32") == "32-true"
    assert check_precision(documented_backend, "bf16") == "bf16-mixed"
    with pytest.raises(ValueError, match=r"backend=compile_max supports precision \['32-true', 'bf16-mixed'\]"):
        check_precision(documented_backend, "fp16")
    # the builder as written, with torch.compile replaced by the identity (compiling takes seconds): fp32 runs the
    # module itself, so the runner's logits equal the module's
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m, **kw: compiled.append(kw) or m)
    torch.manual_seed(0)
    model = nn.Conv2d(3, 2, 1)
    x = torch.randn(1, 3, 8, 8)
    run = build_runner(model, x, documented_backend, "fp32", torch.device("cpu"))
    assert compiled == [{"mode": "max-autotune-no-cudagraphs"}]
    assert torch.equal(run(x), model(x).detach())


def test_precisions_on_the_page_are_lightning_names():
    text = PAGE.read_text()
    calls = re.findall(r"register_backend\(([^()]*(?:\([^()]*\))?[^()]*)\)", text)
    declared = []
    for args in calls:
        call = ast.parse(f"f({args.replace('...', 'None')})").body[0].value
        for kw in call.keywords:
            if kw.arg == "precisions":
                declared += list(ast.literal_eval(kw.value))
    assert declared, f"{PAGE}: no register_backend(..., precisions=...) found"
    for p in declared:
        assert canonical_precision(p, quantized=True) == p, f"{PAGE}: precisions= names {p!r}, not a Lightning name"
