"""Every recipe of config/experiment/ (MIC-DKFZ Cityscapes study + SMP sweep) composes as documented and passes a
Lightning fast_dev_run on the embedded CamVid data (dataset overridden, HRNet-W18, 64x96 crops, CPU, 1 process)."""

from __future__ import annotations

import itertools

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import compose_cfg
from training.train import train

CS = [
    "cs_hrnet",
    "cs_hrnet_ocr",
    "cs_hrnet_ocr_aspp",
    "cs_hrnet_ocr_ms",
    "cs_hrnet_rmi",
    "cs_hrnet_ocr_rmi",
    "cs_hrnet_ocr_aspp_rmi",
    "cs_hrnet_ocr_ms_rmi",
    "cs_coarse_stage2",
    "cs_coarse_stage3",
]
# make any recipe tiny: CamVid embedded, 1 process on CPU, 32-bit, small crops, validation images resized
TINY = [
    "dataset=camvid",
    "trainer=cpu",
    "trainer.devices=1",
    "precision=32",
    "trainer.fast_dev_run=true",
    "batch_size=2",
    "val_batch_size=1",
    "num_workers=0",
    "dataset.crop_size=[64,96]",
    "num_vis=0",
    "callbacks.progress_bar.refresh_rate=0",
    "augmentation.test=[{_target_:albumentations.Resize,height:64,width:96}]",
]
HRNET_TINY = ["model.width=18", "model.pretrained=null"]


def test_cityscapes_recipes_follow_the_study():
    base = compose_cfg(["experiment=cs_hrnet"])
    assert base.dataset.name == "cityscapes" and list(base.dataset.crop_size) == [512, 1024]
    assert (base.lr, base.momentum, base.wd, base.epochs) == (0.01, 0.9, 5.0e-4, 400)
    assert base.batch_size * base.trainer.devices == 12 and base.trainer.sync_batchnorm is True
    assert base.lr_scheduler.scheduler._target_.endswith("PolynomialLR") and list(base.lossfunction) == ["wCE"]
    assert base.model.width == 48 and base.augmentation.train[0].scale_limit == [-0.5, 1.0]  # scale 0.5..2
    rmi = compose_cfg(["experiment=cs_hrnet_ocr_ms_rmi"])
    assert list(rmi.lossfunction) == ["wRMI", "wCE", "wCE", "wCE"] and list(rmi.model.eval_scales) == [0.5, 1.0, 2.0]
    s2, s3 = compose_cfg(["experiment=cs_coarse_stage2"]), compose_cfg(["experiment=cs_coarse_stage3"])
    assert (s2.dataset.name, s2.lr, s2.epochs) == ("cityscapes_coarse", 0.001, 25)
    assert (s3.dataset.name, s3.lr, s3.epochs) == ("cityscapes", 0.001, 65)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", CS)
def test_cityscapes_recipe_fast_dev_run(recipe, tmp_path):
    cfg = compose_cfg([f"experiment={recipe}", *TINY, *HRNET_TINY])
    result = train(cfg, tmp_path / "run")
    assert result["best_epoch"] == 0 and 0.0 <= result["best_mIoU"] <= 1.0


def _sweep_points():
    params = compose_cfg(["experiment=smp_sweep"], return_hydra_config=True).hydra.sweeper.params
    parser = OverridesParser.create()
    values = {k: [str(v) for v in parser.parse_override(f"{k}={v}").sweep_iterator()] for k, v in params.items()}
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


def test_smp_sweep_has_six_points():
    points = _sweep_points()
    assert len(points) == 6
    assert {p["model.arch"] for p in points} == {"Unet", "FPN", "PSPNet"}
    assert {p["model.encoder"] for p in points} == {"resnet50", "mit_b2"}


@pytest.mark.slow
@pytest.mark.parametrize("point", _sweep_points(), ids=lambda p: f"{p['model.arch']}-{p['model.encoder']}")
def test_smp_sweep_point_fast_dev_run(point, tmp_path):
    cfg = compose_cfg(["experiment=smp_sweep", *TINY, *(f"{k}={v}" for k, v in point.items())])
    assert cfg.lr_scheduler.scheduler._target_.endswith("OneCycleLR")
    result = train(cfg, tmp_path / "run")
    assert result["best_epoch"] == 0
