"""A backend as a segbench model (:class:`BackendModule`), so the inference engine (whole/slide/scales/flip) runs
any backend, and predict.py's ``backend=NAME[:PRECISION]`` (:func:`backend_module`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from benchmarking.backends.options import BackendOptions
from benchmarking.backends.registry import Runner, build_runner, check_precision


class BackendModule(nn.Module):
    """A runner as a segbench model (``forward(x) -> {"out": logits}``), so the inference engine
    (``inference.infer``: whole/slide/scales/flip) runs any backend.

    Args:
        runner: ``run(float32[N,3,H,W]) -> float[N,K,h,w]``.
        source: the module the runner was built from (its ``eval_scales``, if any, are kept).
    """

    output_names = ("out",)

    def __init__(self, runner: Runner, source: nn.Module | None = None):
        super().__init__()
        self.runner = runner
        self.eval_scales = getattr(source, "eval_scales", None)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.runner(x).float()}


def backend_module(
    model: nn.Module, spec: str, cfg, device: torch.device, calibration_overrides: Sequence[str] = ()
) -> BackendModule:
    """``model`` run by the backend ``spec`` = ``NAME[:PRECISION]`` (precision default ``32-true``) as a segbench model,
    for predict.py. int8 calibrates on ``calibration.images`` images of ``calibration.split`` of ``cfg.dataset``
    (``config/benchmark.yaml`` composed with ``calibration_overrides``, e.g. ``["calibration.images=64"]``, as
    benchmark.py composes it); the export is kept in the run folder of a trained run (reused by the next call,
    :meth:`BackendOptions.exported`), else it goes to a temporary folder removed once loaded.

    Raises:
        ValueError: unknown backend/precision (valid names listed); ImportError: the extra is missing.
        hydra.errors.ConfigCompositionException: a calibration override names no key of ``config/benchmark.yaml``.
    """
    from benchmarking.export import compose_benchmark_config

    name, _, precision = spec.partition(":")
    precision = check_precision(name, precision or "32-true")
    c = compose_benchmark_config(list(calibration_overrides))[0].calibration
    options = BackendOptions.from_config(cfg, c)
    example = torch.randn(1, 3, 64, 64, device=device)
    return BackendModule(build_runner(model.eval().to(device), example, name, precision, device, options), model)
