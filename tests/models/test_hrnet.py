"""HRNet family: official parameter counts, bilinear fuse backbone, OCR/ASPP/MS-OCR outputs,
hierarchical scale attention in closed form, weight-key mapping, configs and training through main.py."""

import re

import numpy as np
import pytest
import timm
import torch
from hydra.utils import instantiate
from torch import nn

from core.run_folder import RunFolder
from metrics import metrics_from_confusion
from models import HRNetMSOCR, HRNetOCR, HRNetOCRASPP, HRNetV2
from models.hrnet import HRNetBackbone, load_hrnet_state, map_key
from tests.conftest import TINY_RUN, call_hydra_cli, compose_cfg
from training.datamodule import SegDataModule

MODELS = {"hrnet": HRNetV2, "hrnet_ocr": HRNetOCR, "hrnet_ocr_aspp": HRNetOCRASPP, "hrnet_ocr_ms": HRNetMSOCR}
# 1 train batch of 64x64 crops, 1 val image resized to 64x96: seconds per model on CPU
SHORT_RUN = [o for o in TINY_RUN if not o.startswith(("trainer.limit", "val_batch_size", "dataset.crop_size"))] + [
    "model.width=18",
    "dataset.crop_size=[64,64]",
    "val_batch_size=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "augmentation.test=[{_target_:albumentations.Resize,height:64,width:96}]",
]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- parameter counts (official implementations)
@pytest.mark.parametrize(
    "cls,width,expected",
    [
        (HRNetV2, 48, 65_859_379),
        (HRNetV2, 18, 9_641_119),
        (HRNetOCR, 48, 70_372_678),
        (HRNetOCR, 18, 12_080_818),
        (HRNetMSOCR, 48, 72_143_430),
        (HRNetMSOCR, 18, 13_851_570),
        (HRNetOCRASPP, 48, 83_892_326),
    ],
)
def test_parameter_counts_equal_the_official_implementations(cls, width, expected):
    with torch.device("meta"):  # shapes only, no memory
        assert n_params(cls(num_classes=19, width=width)) == expected


def test_head_parameter_counts_in_closed_form():
    # HRNetV2 head: conv1x1(270,270)+bias, BN(270), conv1x1(270,K)+bias; MS-OCR attention head = MS-OCR - OCR
    c, k = 270, 19
    with torch.device("meta"):
        assert n_params(HRNetV2(k, width=18).last_layer) == c * c + c + 2 * c + c * k + k
        assert n_params(HRNetMSOCR(k, width=18).scale_attn) == 512 * 256 * 9 + 2 * 256 + 256 * 256 * 9 + 2 * 256 + 256


# ---------------------------------------------------------------- backbone
def test_backbone_is_timm_hrnet_with_the_official_key_layout():
    ours = HRNetBackbone(18)
    ref = timm.create_model("hrnet_w18", features_only=True, feature_location="")
    assert n_params(ours) == n_params(ref) == 9_562_260
    assert ours.out_channels == 270 and ours.branch_channels == (18, 36, 72, 144)
    keys = set(ours.state_dict())
    assert keys == set(ref.state_dict())
    # keys of HRNet-Image-Classification / HRNet-Semantic-Segmentation checkpoints
    for k in [
        "conv1.weight",
        "bn2.running_var",
        "layer1.0.downsample.0.weight",
        "layer1.3.conv3.weight",
        "transition1.0.0.weight",
        "transition1.1.0.0.weight",
        "transition2.2.0.0.weight",
        "transition3.3.0.1.running_mean",
        "stage2.0.branches.1.3.bn2.weight",
        "stage2.0.fuse_layers.0.1.0.weight",
        "stage2.0.fuse_layers.1.0.0.0.weight",
        "stage4.2.fuse_layers.3.0.2.0.weight",
        "stage4.2.fuse_layers.0.3.1.bias",
    ]:
        assert k in keys, k
    assert not any(isinstance(m, nn.Upsample) for m in ours.modules())


def test_fuse_upsampling_is_bilinear_and_matches_timm_with_bilinear_upsample():
    torch.manual_seed(0)
    ours = HRNetBackbone(18, align_corners=False).eval()
    ref = timm.create_model("hrnet_w18", features_only=True, feature_location="").eval()
    ref.load_state_dict(ours.state_dict())
    for m in ref.modules():
        if isinstance(m, nn.Upsample):
            m.mode = "bilinear"  # what the segmentation HRNet does; exact at sizes divisible by 32
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        got, want = ours.branches(x), ref(x)[1:]
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
        for m in ref.modules():
            if isinstance(m, nn.Upsample):
                m.mode = "nearest"  # timm's default differs, so the test above is not vacuous
        assert not torch.allclose(ours.branches(x)[0], ref(x)[1], atol=1e-3)
        feats = ours(torch.randn(1, 3, 45, 67))  # not divisible by 32: size-based resize (nearest x2 would fail)
    assert feats.shape == (1, 270, 12, 17)


def test_bad_width_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"HRNet width 20 is not available; valid widths: \[18, 30, 32, 40, 44, 48, 64\]"
    ):
        HRNetBackbone(20)


# ---------------------------------------------------------------- outputs and multi-scale attention
@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_follow_the_model_contract(name):
    torch.manual_seed(0)
    model = MODELS[name](num_classes=5, width=18)
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert tuple(out) == tuple(model.output_names)
    assert all(v.shape == (2, 5, 64, 64) and v.dtype == torch.float32 for v in out.values())
    expected = {
        "hrnet": ("out",),
        "hrnet_ocr": ("out", "aux"),
        "hrnet_ocr_aspp": ("out", "aux"),
        "hrnet_ocr_ms": ("out", "aux", "scale_0.5", "scale_1.0"),
    }[name]
    assert tuple(model.output_names) == expected


def _count_backbone_calls(model, x):
    sizes = []
    handle = model.backbone.register_forward_hook(lambda m, inp, out: sizes.append(tuple(inp[0].shape[-2:])))
    with torch.no_grad():
        out = model(x)
    handle.remove()
    return sizes, out


def test_ms_ocr_uses_two_scales_in_training_and_three_in_eval():
    model = HRNetMSOCR(num_classes=3, width=18)
    assert model.train_scales == [0.5, 1.0] and model.eval_scales == [0.5, 1.0, 2.0]
    x = torch.randn(2, 3, 64, 64)  # batch 2: BatchNorm in training needs > 1 value at the 1x1 (1/32 of 32) branch
    sizes, out = _count_backbone_calls(model.train(), x)
    assert sizes == [(64, 64), (32, 32)] and set(out) == {"out", "aux", "scale_0.5", "scale_1.0"}
    sizes, out = _count_backbone_calls(model.eval(), x)
    assert sizes == [(128, 128), (64, 64), (32, 32)] and out["out"].shape == (2, 3, 64, 64)
    model.eval_scales = [1.0]
    assert _count_backbone_calls(model, x)[0] == [(64, 64)]


def test_hierarchical_attention_in_closed_form(monkeypatch):
    # constant per-scale logits p_s and attentions a_s make every resize exact
    model = HRNetMSOCR(num_classes=2, width=18, train_scales=[0.5, 1.0], eval_scales=[0.5, 1.0, 2.0])
    p = {0.5: 1.0, 1.0: 10.0, 2.0: 100.0}
    a = {0.5: 0.25, 1.0: 0.5, 2.0: 0.9}

    def fake(x, s):
        size = (round(x.shape[-2] * s), round(x.shape[-1] * s))
        return (torch.full((1, 2, *size), p[s]), torch.full((1, 2, *size), -p[s]), torch.full((1, 1, *size), a[s]))

    monkeypatch.setattr(model, "_one_scale", fake)
    x = torch.zeros(1, 3, 8, 8)
    out = model.train()(x)
    two = a[0.5] * p[0.5] + (1 - a[0.5]) * p[1.0]  # Tao et al. eq. (1)
    torch.testing.assert_close(out["out"], torch.full((1, 2, 8, 8), two))
    torch.testing.assert_close(out["aux"], torch.full((1, 2, 8, 8), -two))
    torch.testing.assert_close(out["scale_0.5"], torch.full((1, 2, 8, 8), p[0.5]))
    three = a[0.5] * p[0.5] + (1 - a[0.5]) * (a[1.0] * p[1.0] + (1 - a[1.0]) * p[2.0])
    torch.testing.assert_close(model.eval()(x)["out"], torch.full((1, 2, 8, 8), three))


def test_bad_scales_are_refused():
    with pytest.raises(ValueError, match=r"model.eval_scales must be a non-empty list of positive scales, got \[\]"):
        HRNetMSOCR(num_classes=2, width=18, eval_scales=[])


# ---------------------------------------------------------------- weights: key mapping on checkpoints in official layouts
def test_map_key_examples():
    assert map_key("conv1.weight") == "backbone.conv1.weight"
    assert map_key("module.backbone.stage2.0.fuse_layers.0.1.0.weight") == "backbone.stage2.0.fuse_layers.0.1.0.weight"
    assert map_key("module.ocr.aux_head.1.0.running_mean") == "ocr.aux_head.1.0.running_mean"
    assert map_key("model.last_layer.3.bias") == "last_layer.3.bias"
    assert map_key("module.scale_attn.conv0.weight") == "scale_attn.conv0.weight"
    # official HRNet-OCR (seg_hrnet_ocr.py): flat heads, BN directly inside Sequential(conv, BN, ReLU[, conv])
    assert map_key("model.conv3x3_ocr.1.running_var") == "ocr.conv3x3_ocr.1.0.running_var"
    assert map_key("model.aux_head.1.weight") == "ocr.aux_head.1.0.weight"
    assert map_key("model.aux_head.3.bias") == "ocr.aux_head.2.bias"
    assert (
        map_key("model.ocr_distri_head.conv_bn_dropout.1.0.weight") == "ocr.ocr_distri_head.conv_bn_dropout.1.0.weight"
    )


def test_official_hrnet_ocr_layout_loads_completely(tmp_path):
    src = HRNetOCR(num_classes=3, width=18)
    renames = {
        "ocr.conv3x3_ocr.1.0.": "conv3x3_ocr.1.",
        "ocr.aux_head.1.0.": "aux_head.1.",
        "ocr.aux_head.2.": "aux_head.3.",
    }

    def official(k):
        for ours, theirs in renames.items():
            if k.startswith(ours):
                return "model." + theirs + k[len(ours) :]
        return "model." + k.removeprefix("backbone.").removeprefix("ocr.")

    torch.save({official(k): v for k, v in src.state_dict().items()}, tmp_path / "hrnet_ocr_cs.pth")
    model = HRNetOCR(num_classes=3, width=18, pretrained=str(tmp_path / "hrnet_ocr_cs.pth"))
    assert model.load_report.missing == model.load_report.unexpected == model.load_report.mismatched == []
    ref = src.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def test_imagenet_classification_checkpoint_loads_into_the_backbone(tmp_path):
    # official HRNet-Image-Classification layout: flat backbone keys + the classification head
    torch.manual_seed(0)
    src = timm.create_model("hrnet_w18", features_only=True, feature_location="")
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    state.update(
        {
            "incre_modules.0.0.conv1.weight": torch.randn(32, 18, 1, 1),
            "final_layer.0.weight": torch.randn(2048, 1024, 1, 1),
            "classifier.weight": torch.randn(1000, 2048),
        }
    )
    torch.save(state, tmp_path / "hrnetv2_w18_imagenet_pretrained.pth")
    cfg = compose_cfg(
        ["model=hrnet_ocr", "model.width=18", "model.pretrained=ImageNet", f"environment.weights_dir={tmp_path}"]
    )
    model = instantiate(cfg.model, _convert_="all")
    ours = model.state_dict()
    for k, v in state.items():
        if not k.startswith(("incre", "final", "classifier")):
            assert torch.equal(ours["backbone." + k], v), k
    rep = model.load_report
    assert sorted(rep.unexpected) == ["classifier.weight", "final_layer.0.weight", "incre_modules.0.0.conv1.weight"]
    assert rep.missing and all(k.startswith("ocr.") for k in rep.missing) and not rep.mismatched
    assert len(rep.loaded) == len(src.state_dict())


def test_nvidia_ms_ocr_mapillary_checkpoint_loads_except_the_class_heads(tmp_path):
    # NVIDIA semantic-segmentation layout: {"state_dict": {"module.backbone.*", "module.ocr.*", "module.scale_attn.*"}},
    # 65 Mapillary classes, extra non-tensor entries (numpy scalar -> needs the full unpickler)
    torch.manual_seed(0)
    src = HRNetMSOCR(num_classes=65, width=18)
    state = {"module." + k: torch.randn_like(v) if v.is_floating_point() else v for k, v in src.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 175, "mean_iu": np.float64(0.61)}, tmp_path / "mapillary.pth")
    model = HRNetMSOCR(num_classes=11, width=18, pretrained=str(tmp_path / "mapillary.pth"))
    rep = model.load_report
    assert sorted(rep.mismatched) == [
        "ocr.aux_head.2.bias",
        "ocr.aux_head.2.weight",
        "ocr.cls_head.bias",
        "ocr.cls_head.weight",
    ]
    assert rep.missing == [] and rep.unexpected == []
    ours = model.state_dict()
    for k in [
        "backbone.stage4.2.fuse_layers.0.3.0.weight",
        "ocr.ocr_distri_head.object_context_block.f_pixel.3.0.weight",
        "ocr.conv3x3_ocr.0.bias",
        "scale_attn.conv1.weight",
    ]:
        assert torch.equal(ours[k], state["module." + k]), k


def test_own_lightning_checkpoint_round_trip(tmp_path):
    src = HRNetV2(num_classes=4, width=18)
    torch.save({"state_dict": {"model." + k: v for k, v in src.state_dict().items()}}, tmp_path / "last.ckpt")
    model = HRNetV2(num_classes=4, width=18)
    model.load_pretrained(str(tmp_path / "last.ckpt"))
    assert model.load_report.missing == model.load_report.unexpected == model.load_report.mismatched == []
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x)["out"], src.eval()(x)["out"])


def test_missing_named_weights_fail_with_the_expected_file(tmp_path):
    cfg = compose_cfg(
        ["model=hrnet_ocr_ms", "model.width=18", "model.pretrained=Mapillary", f"environment.weights_dir={tmp_path}"]
    )
    with pytest.raises(Exception) as err:  # hydra wraps it in an InstantiationException
        instantiate(cfg.model, _convert_="all")
    assert isinstance(err.value.__cause__, FileNotFoundError)
    msg = str(err.value.__cause__)
    assert f"expected {tmp_path}/mapillary_ocrnet.HRNet_Mscale_fast-rattlesnake.pth" in msg
    assert "${environment.weights_dir}" in msg and "NVIDIA/semantic-segmentation" in msg
    with pytest.raises(FileNotFoundError, match=r"neither one of \['ImageNet', 'Mapillary', 'Paddle'\]"):
        HRNetV2(3, width=18, pretrained=str(tmp_path / "nope.pth"), weight_files=cfg.model.weight_files)


def test_checkpoint_of_another_width_is_refused():
    model = HRNetV2(3, width=18)
    with pytest.raises(ValueError, match=r"the checkpoint is HRNet-W48, the model W18 \(set model.width=48\)"):
        load_hrnet_state(model, {"stage2.0.branches.0.0.conv1.weight": torch.zeros(48, 48, 3, 3)})


# ---------------------------------------------------------------- configs and training through main.py
def test_model_configs_bring_their_loss_defaults_and_the_command_line_wins():
    expect = {
        "hrnet": (["CE"], [1.0]),
        "hrnet_ocr": (["CE", "CE"], [1.0, 0.4]),
        "hrnet_ocr_aspp": (["CE", "CE"], [1.0, 0.4]),
        "hrnet_ocr_ms": (["CE"] * 4, [1.0, 0.4, 0.05, 0.05]),
    }
    for name, (lf, lw) in expect.items():
        cfg = compose_cfg([f"model={name}"])
        assert (list(cfg.lossfunction), list(cfg.lossweight), cfg.model.width) == (lf, lw, 48), name
        assert cfg.model._target_ == f"models.{MODELS[name].__name__}"
    cfg = compose_cfg(["model=hrnet_ocr_ms", "lossfunction=[wRMI,wCE,wCE,wCE]", "model.width=18"])
    assert list(cfg.lossfunction) == ["wRMI", "wCE", "wCE", "wCE"] and list(cfg.lossweight) == [1.0, 0.4, 0.05, 0.05]
    assert cfg.model.weight_files.ImageNet == "hrnetv2_w18_imagenet_pretrained.pth"
    assert list(compose_cfg([]).lossfunction) == ["CE"]  # other models keep train.yaml's default


@pytest.mark.parametrize("name", ["hrnet", "hrnet_ocr", "hrnet_ocr_aspp"])  # hrnet_ocr_ms: the headline test below
def test_each_model_trains_on_camvid(name, tmp_path):
    from training.train import train

    cfg = compose_cfg([f"model={name}", *SHORT_RUN])
    result = train(cfg, tmp_path / "run")
    confmat = torch.load(RunFolder(tmp_path / "run").confusion_matrix)
    assert result["best_mIoU"] == pytest.approx(metrics_from_confusion(confmat)["mIoU"], abs=1e-6)
    dm = SegDataModule(cfg)
    dm.setup("validate")  # limit_val_batches=1, val_batch_size=1: the first val frame, resized to 64x96
    assert confmat.sum().item() == int((dm.val_set[0]["mask"] != 255).sum())
    ckpt = torch.load(RunFolder(tmp_path / "run").checkpoint("last"), map_location="cpu", weights_only=False)
    assert "model.backbone.stage4.2.fuse_layers.0.3.0.weight" in ckpt["state_dict"]
    assert sum(
        v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k and "num_batches" not in k
    ) == n_params(MODELS[name](11, width=18))


def test_headline_command_fast_dev_run(tmp_path, capsys):
    code = call_hydra_cli(
        "main",
        [
            "model=hrnet_ocr_ms",
            "lossfunction=[wRMI,wCE,wCE,wCE]",
            "trainer.fast_dev_run=1",
            *SHORT_RUN,
            f"hydra.run.dir={tmp_path}/run",  # the override list is too long for a folder name
        ],
    )
    out = "".join(capsys.readouterr())
    assert code == 0, out[-4000:]
    assert re.search(r"Epoch 0: val mIoU=\d\.\d{4}", out) and f"Run folder: {tmp_path}/run" in out
    cfg = RunFolder(tmp_path / "run").load_config()
    assert list(cfg.lossfunction) == ["wRMI", "wCE", "wCE", "wCE"] and cfg.model._target_ == "models.HRNetMSOCR"
