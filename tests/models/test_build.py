"""models.build_model: the model contract check and skipping initial weights before a checkpoint load."""

import pytest
from hydra.errors import InstantiationException
from omegaconf import OmegaConf

from models.build import build_model
from tests.conftest import compose_cfg


def test_initial_weights_are_skipped_when_a_checkpoint_follows(tmp_path):
    cfg = compose_cfg(
        ["model=hrnet", "model.width=18", "model.pretrained=ImageNet", f"environment.weights_dir={tmp_path}"]
    )
    with pytest.raises(InstantiationException, match="hrnetv2_w18_imagenet_pretrained.pth"):  # FileNotFoundError inside
        build_model(cfg.model)
    model = build_model(cfg.model, init_weights=False)  # validation.py / predict.py / benchmark.py path
    assert "out" in model.output_names
    assert cfg.model.pretrained == "ImageNet"  # the caller's config is left unchanged


def test_model_without_out_output_is_refused():
    cfg = OmegaConf.create({"_target_": "torch.nn.Identity"})
    with pytest.raises(ValueError, match="output_names containing 'out'"):
        build_model(cfg)
