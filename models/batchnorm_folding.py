"""Inference-time folding of eval-mode BatchNorm into the convolution that feeds it.

A BatchNorm in eval mode is the affine map ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` per channel; when
``x`` is the output of a convolution, the map folds into that convolution's weights and bias
(``torch.nn.utils.fusion.fuse_conv_bn_eval``), and the BatchNorm's pass over the activation disappears (its
measured effect on CPU: ``docs/deploy.md``, BatchNorm folding). ONNX Runtime and OpenVINO apply the same
transformation to their graphs when they load them.

Pairs are found by running the model once with hooks (no tracing, so models with data-dependent control flow work):
a ``BatchNorm2d`` whose input tensor is the output tensor of an ``nn.Conv2d`` (and of nothing else the hooks saw).
A plain ``BatchNorm2d`` (or a subclass with the same forward, e.g. mmengine's ``_BatchNormXd`` in MMSeg models)
becomes ``nn.Identity``; timm's ``BatchNormAct2d`` (BatchNorm, then its ``drop`` and
``act``) becomes ``nn.Sequential(drop, act)``; other subclasses are left alone. The folded model is checked against
the original on the example input (float32): a model the hooks misread is refused and restored, never silently
changed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: largest max |Δ logit| of the folded model, relative to max(1, max |logit|) of the original, at float32
FOLD_TOLERANCE = 1e-4


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> tuple[list[tuple[nn.Conv2d, nn.BatchNorm2d]], object]:
    """The (conv, BatchNorm) pairs of one forward pass of ``model`` on ``example``, and that pass's output."""
    # conv outputs are kept alive for the pass, so their ids are unique while consumers are counted
    produced: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    consumers: dict[int, int] = {}
    candidates: list[tuple[int, nn.Conv2d, nn.BatchNorm2d]] = []

    def on_output(mod, inp, out):
        if isinstance(out, torch.Tensor):
            produced[id(out)] = (mod, out)

    def on_input(mod, inp):
        for t in inp:
            if isinstance(t, torch.Tensor) and id(t) in produced:
                consumers[id(t)] = consumers.get(id(t), 0) + 1
        if _foldable(mod) and inp and id(inp[0]) in produced:
            candidates.append((id(inp[0]), produced[id(inp[0])][0], mod))

    hooks = [m.register_forward_hook(on_output) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(on_input) for m in model.modules() if _foldable(m) or not list(m.children())]
    try:
        with torch.no_grad():
            output = model(example)
    finally:
        for h in hooks:
            h.remove()
    seen: set[int] = set()
    pairs = []
    for key, conv, bn in candidates:  # each pair once (a model may run a block twice), conv output read only by bn
        if consumers.get(key) == 1 and id(bn) not in seen:
            seen.add(id(bn))
            pairs.append((conv, bn))
    return pairs, output


def _plain(mod: nn.Module) -> bool:
    """A BatchNorm computing exactly ``_BatchNorm.forward`` with running statistics: ``nn.BatchNorm2d`` and
    subclasses that only change the input check (mmengine's ``_BatchNormXd``, what MMSeg's SyncBN becomes on one
    process); not SyncBatchNorm or timm's BatchNormAct2d (their own forward)."""
    return (
        isinstance(mod, _BatchNorm)
        and type(mod).forward is _BatchNorm.forward
        and mod.track_running_stats
        and mod.running_mean is not None
    )


def _foldable(mod: nn.Module) -> bool:
    if _plain(mod):
        return True
    return isinstance(mod, nn.BatchNorm2d) and hasattr(mod, "act") and hasattr(mod, "drop")  # timm BatchNormAct2d


def _replacement(bn: nn.BatchNorm2d) -> nn.Module:
    if _plain(bn):
        return nn.Identity()
    return nn.Sequential(bn.drop, bn.act)


def _logits(y) -> torch.Tensor:
    return (y["out"] if isinstance(y, dict) else y).float()


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> int:
    """Fold, in place, each eval BatchNorm that directly follows a convolution into that convolution.

    In place (no copy of the weights), as the ``channels_last`` backend converts its module: a benchmark's memory
    figures then hold one model. A refused fold leaves ``model`` as it was.

    Args:
        model: a segmentation model in eval mode (it is put in eval mode), output logits float[N, K, H, W] (or a
            dict with ``"out"``).
        example: float32[N, 3, H, W] input used to find the pairs and to check the result (module docstring).

    Returns:
        the number of BatchNorms folded (0: ``model`` is unchanged).

    Raises:
        ValueError: the folded model's logits differ from the original's by more than :data:`FOLD_TOLERANCE`
            (relative to max(1, max |logit|)) on ``example``; ``model`` is restored first.
    """
    model.eval()
    pairs, output = _conv_bn_pairs(model, example)
    if not pairs:
        return 0
    ref = _logits(output)
    parent_of = {id(child): (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    undo = []
    for conv, bn in pairs:
        fused = fuse_conv_bn_eval(conv, bn)
        parent, name = parent_of[id(bn)]
        undo.append((conv, conv.weight, conv.bias, parent, name, bn))
        conv.weight, conv.bias = fused.weight, fused.bias
        setattr(parent, name, _replacement(bn))
    with torch.no_grad():
        out = _logits(model(example))
    diff = float((out - ref).abs().max()) / max(1.0, float(ref.abs().max()))
    if not diff <= FOLD_TOLERANCE:
        for conv, weight, bias, parent, name, bn in reversed(undo):
            conv.weight, conv.bias = weight, bias
            setattr(parent, name, bn)
        raise ValueError(
            f"BatchNorm folding changed the logits by {diff:.2e} (relative; tolerance {FOLD_TOLERANCE:g}) on "
            f"{type(model).__name__}; run with fold_bn=false"
        )
    return len(pairs)
