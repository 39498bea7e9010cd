"""Every recipe of config/experiment/ composes to its documented values, builds, and takes one real optimizer step.

Per recipe (the MIC-DKFZ Cityscapes study, the SMP sweep points, the CamVid, ESPNet and MMSeg recipes):

* the composed recipe has the values its header documents (optimizer, lr, scheduler, losses and weights,
  crop size, epochs, precision, dataset, model);
* built on the embedded CamVid data (64x96 crops, batch 2, CPU, fp32, HRNet at W18): the module's optimizer and
  scheduler are those classes with those hyper-parameters, the LR follows the scheduler's closed form, the
  outputs are ``output_names`` with shape (N, K, H/s, W/s), the loss is finite and equals
  ``sum_i lossweight_i * loss_i``, and one optimizer step changes every parameter that received a gradient.

One real Lightning ``fast_dev_run`` per model family (smp via ``camvid_embedded``, the HRNet family via
MS-OCR + RMI, ESPNet, MMSeg) checks the saved best confusion matrix against the returned mIoU and the number of
labelled validation pixels.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import re
from types import SimpleNamespace

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class

from core.precision import canonical_precision
from core.run_folder import RunFolder
from metrics import metrics_from_confusion
from tests.conftest import CONFIG_DIR, compose_cfg
from training.datamodule import SegDataModule
from training.module import SegmentationModule
from training.train import train

N, H, W = 2, 64, 96  # tiny batch: 2 crops of 64x96 (H x W)
STEPS = 10  # Trainer.estimated_stepping_batches handed to configure_optimizers
# make any recipe tiny: CamVid embedded, 1 process on CPU, 32-bit, small crops
TINY = [
    "dataset=camvid",
    "trainer=cpu",
    "trainer.devices=1",
    "precision=32",
    f"batch_size={N}",
    "val_batch_size=1",
    "num_workers=0",
    f"dataset.crop_size=[{H},{W}]",
    "num_vis=0",
    "callbacks.progress_bar.refresh_rate=0",
]
HRNET_TINY = ["model.width=18", "model.pretrained=null"]
FAST_DEV_RUN = [
    "trainer.fast_dev_run=true",
    f"augmentation.test=[{{_target_:albumentations.Resize,height:{H},width:{W}}}]",
]

SGD, ADAMW = "torch.optim.SGD", "torch.optim.AdamW"
POLY, ONECYCLE = "torch.optim.lr_scheduler.PolynomialLR", "torch.optim.lr_scheduler.OneCycleLR"

# What each recipe's header documents (config/experiment/<name>.yaml and the study it follows).
CS_BASE = dict(
    dataset="cityscapes",
    model="models.HRNetV2",
    model_keys={"width": 48, "pretrained": "ImageNet"},
    optimizer=SGD,
    lr=0.01,
    wd=5.0e-4,
    momentum=0.9,
    scheduler=POLY,
    losses=["wCE"],
    weights=[1.0],
    crop=[512, 1024],
    epochs=400,
    precision="16-mixed",
    batch=(6, 2),  # per GPU x GPUs = 12
    outputs=("out",),
)
OCR = dict(model="models.HRNetOCR", losses=["wCE", "wCE"], weights=[1.0, 0.4], outputs=("out", "aux"))
OCR_ASPP = {**OCR, "model": "models.HRNetOCRASPP"}
MS = dict(
    model="models.HRNetMSOCR",
    model_keys={"width": 48, "train_scales": [0.5, 1.0], "eval_scales": [0.5, 1.0, 2.0]},
    losses=["wCE"] * 4,
    weights=[1.0, 0.4, 0.05, 0.05],
    outputs=("out", "aux", "scale_0.5", "scale_1.0"),
)
# the CamVid SMP recipes: AdamW, CE, 256x320 crops, channels_last
CAMVID_SMP = dict(
    dataset="camvid",
    model="models.SMPModel",
    optimizer=ADAMW,
    lr=0.002,
    wd=1.0e-4,
    losses=["CE"],
    weights=[1.0],
    crop=[256, 320],
    channels_last=True,
    outputs=("out",),
)
CAMVID_UNET = dict(
    CAMVID_SMP,
    model_keys={"arch": "Unet", "encoder": "resnet18", "encoder_weights": None},
    scheduler=POLY,
    precision="bf16-mixed",
)
ESPNET = dict(
    dataset="camvid",
    model="models.ESPNet",
    model_keys={"p": 2, "q": 8},
    scheduler=POLY,
    crop=[352, 480],
    epochs=10,
    precision="32-true",
    outputs=("out",),
)
MMSEG = dict(
    dataset="camvid", model="models.MMSegModel", scheduler=POLY, crop=[256, 320], epochs=10, precision="32-true"
)
# Unet with the ImageNet EfficientNet-Lite0 encoder: two stages (frozen encoder 2 epochs, then half LR), OneCycle
LITE0 = dict(
    CAMVID_SMP,
    model_keys={
        "arch": "Unet",
        "encoder": "tu-tf_efficientnet_lite0",
        "encoder_weights": "efficientnet_lite0_imagenet",
    },
    scheduler=ONECYCLE,
    precision=canonical_precision("auto"),  # bf16-mixed on CPUs with native bf16, else 32-true
)
RECIPES = {
    "cs_hrnet": CS_BASE,
    "cs_hrnet_rmi": {**CS_BASE, "losses": ["wRMI"]},
    "cs_hrnet_ocr": {**CS_BASE, **OCR},
    "cs_hrnet_ocr_rmi": {**CS_BASE, **OCR, "losses": ["wRMI", "wCE"]},
    "cs_hrnet_ocr_aspp": {**CS_BASE, **OCR_ASPP},
    "cs_hrnet_ocr_aspp_rmi": {**CS_BASE, **OCR_ASPP, "losses": ["wRMI", "wCE"]},
    "cs_hrnet_ocr_ms": {**CS_BASE, **MS},
    "cs_hrnet_ocr_ms_rmi": {**CS_BASE, **MS, "losses": ["wRMI", "wCE", "wCE", "wCE"]},
    # coarse schedule: stages 2 and 3 fine-tune the stage-1 model at lr 0.001
    "cs_coarse_stage2": {**CS_BASE, "dataset": "cityscapes_coarse", "lr": 0.001, "epochs": 25},
    "cs_coarse_stage3": {**CS_BASE, "lr": 0.001, "epochs": 65},
    "camvid_embedded": {**LITE0, "epochs": 20, "batch": (4, 1)},
    "camvid_lite0_pretrained": {**LITE0, "crop": [352, 480], "epochs": 20, "batch": (8, 1), "losses": ["wCE"]}
    | {"wce_power": 0.5},
    "camvid_unet_r18": {**CAMVID_UNET, "epochs": 18, "batch": (8, 1)},
    "espnet_camvid": {
        **ESPNET,
        "model_keys": {"p": 2, "q": 8, "pretrained": "decoder/espnet_p_2_q_8_camvid.pth"},
        "optimizer": ADAMW,
        "lr": 5.0e-4,
        "wd": 5.0e-4,
        "losses": ["wCE"],
        "weights": [1.0],
        "crop": [360, 480],
    },
    # the authors' 12-output evaluation: the 12th output is a class of its own (no extra "ignore" output dropped)
    "espnet_camvid_authors_eval": {
        **ESPNET,
        "model_keys": {"p": 2, "q": 8, "num_classes": 12, "extra_classes": 0},
        "num_classes": 12,
        "optimizer": SGD,
        "lr": 0.01,
        "wd": 5.0e-4,
        "momentum": 0.9,
        "losses": ["CE"],
        "weights": [1.0],
    },
    "mmseg_deeplabv3plus_r18_camvid": {
        **MMSEG,
        "model_keys": {"config": "deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py"},
        "optimizer": SGD,
        "lr": 0.01,
        "wd": 5.0e-4,
        "momentum": 0.9,
        "losses": ["CE", "CE"],
        "weights": [1.0, 0.4],
        "outputs": ("out", "aux"),
        "strides": {"out": 4, "aux": 8},  # decode head at 1/4, FCN auxiliary head on the dilated 1/8 stage
    },
    "mmseg_segformer_b0_camvid": {
        **MMSEG,
        "model_keys": {"config": "segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py"},
        "optimizer": ADAMW,
        "lr": 6.0e-4,
        "wd": 0.01,
        "losses": ["CE"],
        "weights": [1.0],
        "outputs": ("out",),
        "strides": {"out": 4},
    },
}


def _sweep_points(experiment: str) -> list[dict[str, str]]:
    params = compose_cfg([f"experiment={experiment}"], return_hydra_config=True).hydra.sweeper.params
    parser = OverridesParser.create()
    values = {k: [str(v) for v in parser.parse_override(f"{k}={v}").sweep_iterator()] for k, v in params.items()}
    return [dict(zip(values, combo)) for combo in itertools.product(*values.values())]


SWEEP = {f"smp_sweep:{p['model.arch']}-{p['model.encoder']}": p for p in _sweep_points("smp_sweep")}
# the architecture sweep in miniature: camvid_embedded (make train) with each architecture
ARCHS = {f"camvid_smp_archs:{p['model.arch']}": p for p in _sweep_points("camvid_smp_archs")}
for _name, _point in ARCHS.items():
    RECIPES[_name] = {
        **LITE0,
        "model_keys": {**LITE0["model_keys"], "arch": _point["model.arch"]},
        "epochs": 20,
        "batch": (4, 1),
    }
SWEEP.update(ARCHS)
# the seeded architecture study: camvid_lite0_pretrained with 4 epochs, three architectures x three seeds
STUDY = {f"camvid_lite0_archs:{p['model.arch']}-{p['seed']}": p for p in _sweep_points("camvid_lite0_archs")}
for _name, _point in STUDY.items():
    RECIPES[_name] = {
        **RECIPES["camvid_lite0_pretrained"],
        "model_keys": {**LITE0["model_keys"], "arch": _point["model.arch"]},
        "epochs": 4,
    }
SWEEP.update(STUDY)
for _name, _point in SWEEP.items():
    if _name in ARCHS or _name in STUDY:
        continue
    RECIPES[_name] = dict(
        dataset="camvid",
        model="models.SMPModel",
        model_keys={"arch": _point["model.arch"], "encoder": _point["model.encoder"]},
        optimizer=ADAMW,
        lr=3.0e-4,
        wd=1.0e-2,
        scheduler=ONECYCLE,
        losses=["CE"],
        weights=[1.0],
        crop=[352, 480],
        epochs=40,
        batch=(8, 1),
        precision="bf16-mixed",
        outputs=("out",),
    )
# smp's PSPNet runs its encoder to depth 3 (stride 8): the deeper encoder stages are built but get no gradient
# (resnet/mit: stages 3-4; timm EfficientNet-Lite0: blocks 3-6)
UNUSED = re.compile(r"model\.net\.encoder\.(layer[34]|patch_embed[34]|block[34]|norm[34]|model\.blocks\.[3-6])\.")
# MMSeg's ResNet starts each residual branch at zero (zero_init_residual: norm2 weight 0), so the first step
# gives conv1, bn1 and conv2 of every BasicBlock an exactly zero gradient
ZERO_GRAD = re.compile(r"model\.segmentor\.backbone\.layer\d\.\d\.(conv1|bn1|conv2)\.")
# smp MAnet's gates: the squeeze-excitation gates of its decoder blocks (pool -> conv -> ReLU -> conv -> sigmoid) and
# the position-attention centre (softmax attention): on a 64x96 batch at initialisation their gradients can be
# exactly zero (every ReLU input of a gate negative) or too small for one AdamW step to move a float32 weight;
# which ones depends on the random crops
MANET_GATES = re.compile(r"model\.net\.decoder\.(blocks\.\d\.SE_(ll|hl)\.[13]|center)\.")


HAVE_MMSEG = all(importlib.util.find_spec(m) is not None for m in ("mmseg", "mmengine", "mmcv"))


def _needs_extra(name: str):
    """``name`` as a test parameter; MMSeg ones skip with the reason when the optional extra is missing."""
    if "mmseg" not in name or HAVE_MMSEG:
        return name
    return pytest.param(name, marks=pytest.mark.skip(reason="MMSeg extra: pip install -r requirements-mmseg.txt"))


RECIPE_PARAMS = [_needs_extra(r) for r in sorted(RECIPES)]
# recipes that differ from another one only in scalars (lr, epochs, batch size, dataset): the same model and losses
# are built, so one optimizer step of the other covers them
SAME_BUILD = {
    "cs_coarse_stage2": "cs_hrnet",
    "cs_coarse_stage3": "cs_hrnet",
    # the study's points differ in the seed: seed 1 of each architecture takes the step (its Unet is the recipe's)
    **{
        name: "camvid_lite0_pretrained"
        if point["model.arch"] == "Unet"
        else f"camvid_lite0_archs:{point['model.arch']}-1"
        for name, point in STUDY.items()
        if point["model.arch"] == "Unet" or point["seed"] != "1"
    },
}
STEP_PARAMS = [_needs_extra(r) for r in sorted(RECIPES) if r not in SAME_BUILD]


def _overrides(recipe: str) -> list[str]:
    """The command-line overrides that select ``recipe`` (a sweep point adds its model overrides)."""
    if recipe in SWEEP:
        return [f"experiment={recipe.split(':')[0]}", *(f"{k}={v}" for k, v in SWEEP[recipe].items())]
    return [f"experiment={recipe}"]


def _tiny(recipe: str) -> list[str]:
    """Overrides that make ``recipe`` tiny and local (no pretrained weights: nothing leaves the repository)."""
    extra = HRNET_TINY if recipe.startswith("cs_") else ["model.pretrained=null"] if "espnet" in recipe else []
    return [*_overrides(recipe), *TINY, *extra]


def test_every_recipe_file_is_covered():
    files = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
    assert sorted({r.split(":")[0] for r in RECIPES}) == files
    assert sorted(k for k in SWEEP if k.startswith("smp_sweep:")) == [
        f"smp_sweep:{a}-{e}" for a in ("FPN", "PSPNet", "Unet") for e in ("mit_b2", "resnet50")
    ]
    assert sorted(ARCHS) == [
        f"camvid_smp_archs:{a}" for a in sorted(["Unet", "UnetPlusPlus", "FPN", "PSPNet", "MAnet", "DeepLabV3Plus"])
    ]
    assert sorted(STUDY) == [f"camvid_lite0_archs:{a}-{s}" for a in ("DeepLabV3Plus", "FPN", "Unet") for s in (1, 2, 3)]


@pytest.mark.parametrize("recipe", RECIPE_PARAMS)
def test_recipe_composes_to_its_documented_values(recipe):
    exp, cfg = RECIPES[recipe], compose_cfg(_overrides(recipe))
    assert cfg.experiment == recipe.split(":")[0] and cfg.dataset.name == exp["dataset"]
    assert cfg.model._target_ == exp["model"]
    for key, value in exp.get("model_keys", {}).items():
        assert cfg.model[key] == value, (key, cfg.model[key])
    opt = cfg.optimizer
    assert (opt._target_, opt.lr, opt.weight_decay) == (exp["optimizer"], exp["lr"], exp["wd"])
    if "momentum" in exp:
        assert (opt.momentum, opt.nesterov) == (exp["momentum"], False)
    assert cfg.lr_scheduler.scheduler._target_ == exp["scheduler"] and cfg.lr_scheduler.interval == "step"
    if exp["scheduler"] == POLY:
        assert cfg.lr_scheduler.scheduler.power == 0.9
    else:
        assert (cfg.lr_scheduler.scheduler.max_lr, cfg.lr_scheduler.scheduler.pct_start) == (exp["lr"], 0.3)
    assert (list(cfg.lossfunction), list(cfg.lossweight)) == (exp["losses"], exp["weights"])
    assert list(cfg.dataset.crop_size) == exp["crop"]
    assert cfg.loss_params == ({"wCE": {"power": exp["wce_power"]}} if "wce_power" in exp else {})
    assert (cfg.trainer.max_epochs, cfg.trainer.precision) == (exp["epochs"], exp["precision"])
    assert cfg.channels_last is exp.get("channels_last", False)
    if "batch" in exp:
        assert (cfg.batch_size, cfg.trainer.devices) == exp["batch"]
    if recipe.startswith("cs_"):  # multi-GPU DDP with synchronised BatchNorm, random scale 0.5..2 + crop + flip
        assert (cfg.trainer.strategy, cfg.trainer.sync_batchnorm) == ("ddp", True)
        assert [a._target_.split(".")[-1] for a in cfg.augmentation.train] == [
            "RandomScale",
            "PadIfNeeded",
            "RandomCrop",
            "HorizontalFlip",
        ]
        assert list(cfg.augmentation.train[0].scale_limit) == [-0.5, 1.0]


@pytest.mark.parametrize("recipe", sorted(SAME_BUILD))
def test_recipe_builds_what_its_stepped_twin_builds(recipe):
    cfg, twin = compose_cfg(_tiny(recipe)), compose_cfg(_tiny(SAME_BUILD[recipe]))
    for key in ("model", "lossfunction", "lossweight", "loss_params", "lr_scheduler", "dataset", "augmentation"):
        assert cfg[key] == twin[key], key
    assert cfg.optimizer._target_ == twin.optimizer._target_ and cfg.optimizer.lr == RECIPES[recipe]["lr"]


@pytest.mark.parametrize("recipe", STEP_PARAMS)
def test_recipe_builds_and_takes_one_step(recipe):
    exp, cfg = RECIPES[recipe], compose_cfg(_tiny(recipe))
    module = SegmentationModule(cfg)
    k = exp.get("num_classes", 11)
    assert type(module.model).__name__ == exp["model"].split(".")[-1]
    assert module.output_names == exp["outputs"]
    assert (module.criterion.output_names, module.criterion.names) == (list(exp["outputs"]), exp["losses"])
    assert module.criterion.weights == exp["weights"]
    if "wce_power" in exp:  # the loss weights are the dataset's class weights to that power
        w = torch.tensor(list(cfg.dataset.class_weights)) ** exp["wce_power"]
        assert torch.allclose(module.criterion.losses[0].weight, w)

    module.trainer = SimpleNamespace(estimated_stepping_batches=STEPS)  # all configure_optimizers reads
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert (type(opt), type(sched)) == (get_class(exp["optimizer"]), get_class(exp["scheduler"]))
    assert conf["lr_scheduler"]["interval"] == "step"
    group = opt.param_groups[0]
    assert (opt.defaults["lr"], group["weight_decay"]) == (exp["lr"], exp["wd"])
    if exp["scheduler"] == POLY:
        assert sched.total_iters == STEPS and group["lr"] == exp["lr"]
        lr_after_one = exp["lr"] * (1 - 1 / STEPS) ** 0.9
    else:  # one-cycle starts at max_lr / div_factor(25); step 1 of the cosine warm-up to step 0.3 * STEPS - 1 = 2
        assert sched.total_steps == STEPS and group["lr"] == pytest.approx(exp["lr"] / 25)
        lr_after_one = exp["lr"] / 25 + (exp["lr"] - exp["lr"] / 25) * (1 - math.cos(math.pi / 2)) / 2

    dm = SegDataModule(cfg)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    images, mask = batch["image"], batch["mask"]
    assert (tuple(images.shape), images.dtype, tuple(mask.shape), mask.dtype) == (
        (N, 3, H, W),
        torch.float32,
        (N, H, W),
        torch.int64,
    )
    module.train()
    # stochastic depth (timm / mmcv DropPath in MiT and SegFormer encoders) drops a whole residual branch for a
    # sample with probability drop_prob; with N samples all dropped, that branch would get an exactly zero
    # gradient. The step checks every branch, so none is dropped here (dropout and the rest stay on).
    for m in module.modules():
        if type(m).__name__ == "DropPath":
            m.drop_prob = 0.0
    outputs = module(images)
    strides = exp.get("strides", {})
    assert {name: tuple(o.shape) for name, o in outputs.items()} == {
        name: (N, k, H // strides.get(name, 1), W // strides.get(name, 1)) for name in exp["outputs"]
    }
    total, parts = module.criterion(outputs, mask)
    assert list(parts) == list(exp["outputs"]) and math.isfinite(total.item())
    assert total.item() == pytest.approx(sum(w * parts[n].item() for n, w in zip(exp["outputs"], exp["weights"])))

    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    opt.zero_grad()
    total.backward()
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(lr_after_one)
    params = dict(module.named_parameters())
    unused = {n for n, p in params.items() if p.grad is None}
    expected_unused = {n for n in params if UNUSED.match(n)} if ":PSPNet" in recipe else set()
    assert unused == expected_unused
    assert all(torch.equal(before[n], params[n]) for n in unused)
    zero = {n for n, p in params.items() if p.grad is not None and not p.grad.any()}
    if ":MAnet" in recipe:  # left out of the two checks below
        gates = {n for n in params if MANET_GATES.match(n)}
        zero -= gates
        unused |= gates
    assert zero == ({n for n in params if ZERO_GRAD.match(n)} if recipe == "mmseg_deeplabv3plus_r18_camvid" else set())
    assert [n for n in params if n not in unused | zero and torch.equal(before[n], params[n])] == []


# One real Lightning fit per model family (1 train + 1 validation batch). fast_dev_run turns checkpoints and
# loggers off; the best confusion matrix is still written by the module.
FAMILIES = {
    "smp": ["experiment=camvid_embedded"],  # what `make train` runs: pretrained Lite0, channels_last on CPU
    "hrnet": ["experiment=cs_hrnet_ocr_ms_rmi"],  # 4 outputs, multi-scale training, RMI
    "espnet": ["experiment=espnet_camvid"],
    "mmseg": ["experiment=mmseg_segformer_b0_camvid"],
}


@pytest.mark.slow
@pytest.mark.parametrize("family", [_needs_extra(f) for f in sorted(FAMILIES)])
def test_family_fast_dev_run(family, tmp_path):
    recipe = FAMILIES[family][0].split("=")[1]
    overrides = _tiny(recipe) + FAST_DEV_RUN
    cfg = compose_cfg(overrides)
    result = train(cfg, tmp_path / "run")
    run = RunFolder(result["run_dir"])
    confmat = torch.load(run.confusion_matrix)
    assert (tuple(confmat.shape), confmat.dtype) == ((11, 11), torch.int64)
    dm = SegDataModule(cfg)
    dm.setup("validate")
    first = dm.val_set[0]["mask"]  # fast_dev_run validates the first batch: one image at 64x96
    assert tuple(first.shape) == (H, W) and confmat.sum().item() == int((first != 255).sum())
    assert result["best_epoch"] == 0
    assert result["best_mIoU"] == pytest.approx(metrics_from_confusion(confmat)["mIoU"], abs=1e-6)
    saved = run.load_config()
    assert (saved.experiment, list(saved.lossfunction), saved.trainer.fast_dev_run) == (
        recipe,
        list(cfg.lossfunction),
        True,
    )
