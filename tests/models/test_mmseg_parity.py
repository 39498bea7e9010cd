"""MMSeg parity: a checkpoint in MMSegmentation's own format (built by MMSeg from random init, saved as its Runner
saves) loads with ``model=mmseg model.checkpoint=``, and segbench's whole-image logits equal MMSeg's own
``mmseg.apis.inference_model`` on the same image, for SegFormer-B0, DeepLabV3+-R50-D8 and Mask2Former-R50 (the
latter's "logits" are its per-pixel class scores).

Skipped with the reason when the MMSeg extra is missing (``pip install -r requirements-mmseg.txt``; ``make test``
installs it).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from inference.engine import view_logits
from tests.conftest import compose_cfg
from tests.models.test_mmseg import needs_mmseg

#: (config under mmseg/.mim/configs, its class count, image height, width): sizes multiples of 32 (Mask2Former's
#: test-time size_divisor), so neither side pads
PARITY = {
    "SegFormer-B0": ("segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py", 150, 64, 96),
    "DeepLabV3+-R50-D8": ("deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py", 19, 64, 96),
    "Mask2Former-R50": ("mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py", 19, 64, 96),
}
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)  # MMSeg's data_preprocessor (RGB, 0-255)


def _mmseg_checkpoint(config: str, path) -> object:
    """MMSeg's own model from ``config`` (random init, BatchNorm statistics randomised) saved as MMSeg's Runner
    saves a checkpoint (``meta`` + ``state_dict``); returns the model, in eval mode."""
    from models.mmseg import import_mmseg, resolve_config

    import_mmseg()  # mmcv without compiled ops: segbench's shim, as for model=mmseg
    from mmengine.runner.checkpoint import get_state_dict, save_checkpoint, weights_to_cpu
    from mmseg.apis import init_model

    torch.manual_seed(0)
    model = init_model(str(resolve_config(config)), checkpoint=None, device="cpu")
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    meta = {"mmseg_version": __import__("mmseg").__version__, "dataset_meta": getattr(model, "dataset_meta", {})}
    save_checkpoint({"meta": meta, "state_dict": weights_to_cpu(get_state_dict(model))}, str(path))
    return model.eval()


@needs_mmseg
@pytest.mark.parametrize("name", list(PARITY))
def test_mmseg_checkpoint_gives_mmseg_inference_logits(name, tmp_path):
    config, k, h, w = PARITY[name]
    path = tmp_path / "iter_80000.pth"
    reference = _mmseg_checkpoint(config, path)
    from mmseg.apis import inference_model

    reference.cfg.test_pipeline = [{"type": "LoadImageFromNDArray"}, {"type": "PackSegInputs"}]  # whole image as is
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = inference_model(reference, np.ascontiguousarray(rgb[..., ::-1])).seg_logits.data  # MMSeg reads BGR

    cfg = compose_cfg(["model=mmseg", f"model.config={config}", f"model.checkpoint={path}", f"model.num_classes={k}"])
    model = instantiate(cfg.model).eval()
    assert model.load_report["missing"] == [] and model.load_report["unexpected"] == []
    assert model.load_report["skipped_shape"] == [] and model.load_report["loaded"] == len(reference.state_dict())
    x = (torch.from_numpy(rgb).permute(2, 0, 1).float()[None] - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[
        :, None, None
    ]
    _flip, logits = next(view_logits(model, x))
    assert logits.shape == (1, k, h, w) == (1, *expected.shape)
    scale = max(1.0, expected.abs().max().item())
    assert (logits[0] - expected).abs().max().item() <= 1e-4 * scale
    assert torch.equal(logits[0].argmax(0), expected.argmax(0))
