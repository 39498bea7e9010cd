"""MMSegmentation wrapper: the missing-extra error, building shipped configs with segbench's num_classes,
outputs/shapes, local checkpoints, fast_dev_run training on CamVid and a benchmark sweep beside a segbench model.

Tests needing the extra skip with the reason when it is missing (``pip install -r requirements-mmseg.txt``;
``make test`` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch

from models.mmseg import MMSegModel
from tests.conftest import call_hydra_cli, error_line

HAVE_MMSEG = all(importlib.util.find_spec(m) is not None for m in ("mmseg", "mmengine", "mmcv"))
needs_mmseg = pytest.mark.skipif(
    not HAVE_MMSEG, reason="MMSegmentation extra not installed: pip install -r requirements-mmseg.txt"
)
SEGFORMER = "segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py"
DEEPLAB = "deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py"


@pytest.fixture(scope="module")
def built():
    """SegFormer-B0 and DeepLabV3+-R18 built once with K=11 (CamVid)."""
    torch.manual_seed(0)
    return {"segformer": MMSegModel(SEGFORMER, num_classes=11), "deeplab": MMSegModel(DEEPLAB, num_classes=11)}


def test_missing_extra_is_one_line_naming_the_requirements_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmengine", None)  # as if not installed
    with pytest.raises(ImportError) as e:
        MMSegModel(SEGFORMER, num_classes=11)
    msg = str(e.value)
    assert "pip install -r requirements-mmseg.txt" in msg and "\n" not in msg


def test_main_with_model_mmseg_names_the_requirements_file_without_the_extra(tmp_path, monkeypatch, capsys):
    """``mmengine`` unimportable (as if not installed) fails main.py in one line naming the requirements file."""
    monkeypatch.setitem(sys.modules, "mmengine", None)
    code = call_hydra_cli("main", ["model=mmseg", "epochs=1", f"LOGDIR={tmp_path / 'logs'}"])
    err = capsys.readouterr().err
    assert code != 0
    assert "pip install -r requirements-mmseg.txt" in error_line(err, "main.py"), err[-2000:]


@needs_mmseg
def test_heads_take_segbench_num_classes_and_nothing_downloads(built):
    seg, dl = built["segformer"].segmentor, built["deeplab"].segmentor
    assert tuple(seg.decode_head.conv_seg.weight.shape) == (11, 256, 1, 1)  # SegFormer head: 256 channels
    assert tuple(dl.decode_head.conv_seg.weight.shape) == (11, 128, 1, 1)  # DeepLabV3+-R18 head: 128
    assert tuple(dl.auxiliary_head.conv_seg.weight.shape) == (11, 64, 1, 1)  # FCN auxiliary head: 64
    init_cfgs = [str(getattr(m, "init_cfg", None)) for net in (seg, dl) for m in net.modules()]
    assert not [c for c in init_cfgs if "Pretrained" in c or "http" in c]  # configs had Pretrained init_cfg
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in dl.modules())  # reverted to BatchNorm2d


@needs_mmseg
def test_outputs_follow_the_model_contract(built):
    seg, dl = built["segformer"], built["deeplab"]
    assert seg.output_names == ("out",) and dl.output_names == ("out", "aux")
    x = torch.randn(2, 3, 64, 96)
    seg.train(), dl.train()
    o_seg, o_dl = seg(x), dl(x)
    assert tuple(o_seg["out"].shape) == (2, 11, 16, 24)  # SegFormer: 1/4
    assert tuple(o_dl["out"].shape) == (2, 11, 16, 24)  # DeepLabV3+ decoder: 1/4
    assert tuple(o_dl["aux"].shape) == (2, 11, 8, 12)  # FCN head on stage 3 (output stride 8)
    (o_dl["out"].mean() + o_dl["aux"].mean()).backward()
    dl.eval()
    with torch.no_grad():
        assert set(dl(x)) == {"out"}  # auxiliary heads are training-only
    assert MMSegModel(DEEPLAB, num_classes=5, aux_outputs=False).output_names == ("out",)


@needs_mmseg
@pytest.mark.skipif(
    importlib.util.find_spec("mmdet") is None,
    reason="Mask2Former needs mmdet (in requirements-mmseg.txt): pip install -r requirements-mmseg.txt",
)
def test_mask2former_runs_through_encode_decode():
    m = MMSegModel("mask2former_r50_8xb2-90k_cityscapes-512x1024", num_classes=11)
    assert m.query_head and m.output_names == ("out",)
    x = torch.randn(1, 3, 64, 96)
    m.eval()
    with torch.no_grad():
        out = m(x)["out"]
    assert tuple(out.shape) == (1, 11, 64, 96) and bool((out >= 0).all())  # class scores at input size


@needs_mmseg
def test_cascade_segmentor_exposes_earlier_decode_head():
    """OCRNet (CascadeEncoderDecoder): the FCN head before the OCR head is output "stage0" while training."""
    m = MMSegModel("ocrnet_hr18s_4xb2-40k_cityscapes-512x1024", num_classes=11)
    assert m.output_names == ("out", "stage0")
    out = m.train()(torch.randn(2, 3, 64, 64))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"out": (2, 11, 16, 16), "stage0": (2, 11, 16, 16)}


@needs_mmseg
def test_unknown_config_lists_closest_names():
    with pytest.raises(FileNotFoundError, match=r"segformer_mit-b0_8xb2-160k_ade20k-512x512"):
        MMSegModel("segformer_mit-b0_ade20k", num_classes=11)


@needs_mmseg
def test_local_checkpoint_loads_all_but_other_class_count_heads(built, tmp_path):
    src = MMSegModel(DEEPLAB, num_classes=19)
    path = tmp_path / "deeplab_19.pth"
    torch.save({"meta": {}, "state_dict": src.segmentor.state_dict()}, path)
    dst = MMSegModel(DEEPLAB, num_classes=11, checkpoint=str(path))
    rep = dst.load_report
    assert sorted(rep["skipped_shape"]) == [
        "auxiliary_head.conv_seg.bias",
        "auxiliary_head.conv_seg.weight",
        "decode_head.conv_seg.bias",
        "decode_head.conv_seg.weight",
    ]
    assert rep["unexpected"] == [] and sorted(rep["missing"]) == sorted(rep["skipped_shape"])
    assert torch.equal(dst.segmentor.backbone.stem[0].weight, src.segmentor.backbone.stem[0].weight)
    with pytest.raises(FileNotFoundError, match="not found"):
        dst.load_pretrained(tmp_path / "absent.pth")


@needs_mmseg
def test_fast_dev_run_on_camvid_segformer_and_deeplabv3plus(tmp_path, capsys):
    """main.py multirun over both experiments (in-process main.cli), 1 train + 1 val batch."""
    code = call_hydra_cli(
        "main",
        [
            "-m",
            "experiment=mmseg_segformer_b0_camvid,mmseg_deeplabv3plus_r18_camvid",
            "trainer.fast_dev_run=true",
            "batch_size=2",
            "val_batch_size=2",
            "num_workers=0",
            "dataset.crop_size=[64,96]",
            "num_vis=0",
            "callbacks.progress_bar.refresh_rate=0",
            f"LOGDIR={tmp_path}",
        ],
    )
    out = "".join(capsys.readouterr())
    assert code == 0, out[-3000:]
    hparams = sorted(tmp_path.rglob("hparams.yaml"))
    assert len(hparams) == 2, hparams
    text = " ".join(p.read_text() for p in hparams)
    assert SEGFORMER in text and DEEPLAB in text
    assert out.count("val mIoU=") == 2


@needs_mmseg
def test_benchmark_sweep_segbench_and_mmseg_models(tmp_path):
    """One benchmark.py sweep: Unet-r18 (segbench) and MMSeg SegFormer-B0 (mmseg.yaml default) at one resolution."""
    argv = ["-m", "model=smp,mmseg", "resolution=64x64", "warmup=1", "iterations=2", "device=cpu", "threads=1"]
    assert call_hydra_cli("benchmark", [*argv, f"LOGDIR={tmp_path}"]) == 0
    recs = [json.loads(p.read_text()) for p in sorted(tmp_path.rglob("benchmark/*.json"))]
    assert len(recs) == 2, [p for p in tmp_path.rglob("*.json")]
    by_model = {rec["model"]: rec for rec in recs}
    assert set(by_model) == {"smp", "mmseg"}
    assert all(rec["status"] == "ok" and rec["fps"] > 0 and rec["resolution"] == "64x64" for rec in recs), recs
    assert by_model["mmseg"]["name"] == SEGFORMER and by_model["mmseg"]["params"] > 3e6


#: Mask2Former-R50's config shrunk for CPU tests: ResNet-18, 8 queries, 2 decoder layers, 1 pixel-decoder layer
SMALL_MASK2FORMER = {
    "model.backbone.depth": 18,
    "model.decode_head.in_channels": [64, 128, 256, 512],
    "model.decode_head.num_queries": 8,
    "model.decode_head.transformer_decoder.num_layers": 2,
    "model.decode_head.pixel_decoder.encoder.num_layers": 1,
}


@needs_mmseg
@pytest.mark.skipif(
    importlib.util.find_spec("mmdet") is None,
    reason="Mask2Former needs mmdet (in requirements-mmseg.txt): pip install -r requirements-mmseg.txt",
)
def test_mask2former_native_loss_is_its_matching_loss_and_decreases():
    """lossfunction=[native]: MMSeg's Mask2Former loss (class CE + mask BCE + Dice, per decoder layer) is the total,
    its parts grouped by kind; the "no object" class weight follows num_classes; 10 AdamW steps on one batch lower it."""
    torch.manual_seed(0)
    m = MMSegModel("mask2former_r50_8xb2-90k_cityscapes-512x1024", num_classes=3, cfg_options=SMALL_MASK2FORMER)
    assert m.segmentor.decode_head.loss_cls.class_weight == [1.0, 1.0, 1.0, 0.1]
    y = torch.zeros(2, 64, 64, dtype=torch.long)
    y[:, :, 32:], y[:, 48:], y[:, :4] = 1, 2, 255  # three segments and an ignored band
    x = torch.randn(2, 3, 64, 64) + y[:, None].clamp(max=2).float()
    raw = m.train().segmentor.loss(x, m.native_samples(y))
    # 3 losses on the last decoder layer and on each of the 2 intermediate predictions (d0, d1)
    assert sorted(k for k in raw if "loss" in k) == sorted(
        f"decode.{p}loss_{kind}" for p in ("", "d0.", "d1.") for kind in ("cls", "mask", "dice")
    )
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    totals = []
    for _ in range(10):
        total, parts = m.native_loss(x, y)
        assert set(parts) == {"cls", "mask", "dice"}
        assert float(total) == pytest.approx(float(sum(parts.values())), rel=1e-5)
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(float(total))
    assert sum(totals[-3:]) / 3 < 0.8 * totals[0]


def test_native_loss_stands_alone_and_needs_a_model_with_one():
    from training.module import native_loss_of

    class Plain(torch.nn.Module):
        pass

    class Own(torch.nn.Module):
        def native_loss(self, images, target):
            return images.sum(), {}

    assert native_loss_of(Own(), ["native"]) and not native_loss_of(Plain(), ["CE"])
    with pytest.raises(ValueError, match=r"^lossfunction=\['native', 'CE'\]: 'native' .* stands alone"):
        native_loss_of(Own(), ["native", "CE"])
    with pytest.raises(ValueError, match=r"^lossfunction=\[native\]: Plain has no loss of its own"):
        native_loss_of(Plain(), ["native"])


#: BEiT-B UPerNet's ADE20K config shrunk to a 64x64 img_size, 4 layers of width 32 (same code paths, seconds to build)
TINY_BEIT = {
    "model.backbone.img_size": (64, 64),
    "model.backbone.embed_dims": 32,
    "model.backbone.num_layers": 4,
    "model.backbone.num_heads": 2,
    "model.backbone.out_indices": [0, 1, 2, 3],
    "model.neck.embed_dim": 32,
    "model.decode_head.in_channels": [32, 32, 32, 32],
    "model.decode_head.channels": 16,
    "model.auxiliary_head.in_channels": 32,
    "model.auxiliary_head.channels": 16,
}


@needs_mmseg
def test_fixed_size_backbone_pads_smaller_inputs_and_names_slide_mode_for_larger():
    """BEiT's relative position tables fix its input to img_size: a smaller input is zero-padded at the bottom and
    right, the logits resized to the padded size and cropped back (equal to doing it by hand); a larger one is one
    line naming mode=slide crop_size=."""
    torch.manual_seed(0)
    m = MMSegModel("beit-base_upernet_8xb2-160k_ade20k-640x640", num_classes=5, cfg_options=TINY_BEIT).eval()
    assert m.fixed_size == (64, 64)
    x = torch.randn(1, 3, 48, 56)
    with torch.no_grad():
        out = m(x)["out"]
        full = m(torch.nn.functional.pad(x, (0, 8, 0, 16)))["out"]  # 64x64: no padding inside
    expected = torch.nn.functional.interpolate(full, size=(64, 64), mode="bilinear", align_corners=False)
    assert out.shape == (1, 5, 48, 56)
    assert torch.equal(out, expected[..., :48, :56])
    with pytest.raises(ValueError, match=r"input 80x64 is larger than the backbone's fixed img_size 64x64; "
                                         r"infer with mode=slide crop_size=\[64,64\]"):  # fmt: skip
        m(torch.randn(1, 3, 80, 64))
    m.train()
    assert {k: tuple(v.shape) for k, v in m(torch.randn(2, 3, 32, 64)).items()} == {
        "out": (2, 5, 32, 64),
        "aux": (2, 5, 32, 64),
    }
