"""ESPNet / ESPNet-C / ESPNetv2: input convention (closed form), author checkpoints (strict loading, parameter
counts equal to the checkpoints'), extra output dropped, real images give sane accuracy, validation.py checkpoint=<file>."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

import validation
from core.errors import run_entry as run_in_process
from models.espnet import ESPNet, ESPNetv2, InputConvention
from tests.conftest import compose_cfg

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
CAMVID_BGR = ([110.33, 108.41, 105.03], [72.13, 72.69, 69.90])

# (file under weights/, constructor kwargs)
ESPNET_FILES = [
    ("espnet/decoder/espnet_p_2_q_8_camvid.pth", dict(num_classes=11, extra_classes=1, q=8)),
    ("espnet/decoder/espnet_p_2_q_3.pth", dict(num_classes=19, extra_classes=1, q=3)),
    ("espnet/decoder/espnet_p_2_q_5.pth", dict(num_classes=19, extra_classes=1, q=5)),
    ("espnet/decoder/espnet_p_2_q_8.pth", dict(num_classes=19, extra_classes=1, q=8)),
    ("espnet/encoder/espnet_p_2_q_3.pth", dict(num_classes=19, extra_classes=1, q=3, decoder=False)),
    ("espnet/encoder/espnet_p_2_q_8.pth", dict(num_classes=19, extra_classes=1, q=8, decoder=False)),
]
ESPNETV2_FILES = [
    ("espnetv2/espnetv2_s_1.0_city_1024x512.pth", dict(num_classes=19, extra_classes=1, s=1.0)),
    ("espnetv2/espnetv2_s_2.0_city_1024x512.pth", dict(num_classes=19, extra_classes=1, s=2.0)),
    ("espnetv2/espnetv2_s_2.0_pascal_384x384.pth", dict(num_classes=21, extra_classes=0, s=2.0)),
]


def _checkpoint_param_count(path) -> int:
    """Learnable tensors of a checkpoint (BatchNorm running statistics excluded)."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return sum(v.numel() for k, v in sd.items() if not k.endswith(stats))


# ----------------------------------------------------------------------------- input convention, closed form
def test_input_convention_reproduces_espnet_preprocessing():
    """dataset ImageNet-normalised RGB -> InputConvention == authors' ((BGR - mean) / std) / 255."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(3, 4, 5)).astype(np.float64)
    x = (rgb / 255 - np.array(IMAGENET[0])[:, None, None]) / np.array(IMAGENET[1])[:, None, None]
    conv = InputConvention(
        *IMAGENET, mean=CAMVID_BGR[0], std=CAMVID_BGR[1], channel_order="BGR", value_range=255, divisor=255
    )
    y = conv(torch.tensor(x, dtype=torch.float32)[None])[0].double().numpy()
    bgr = rgb[::-1]
    expected = (bgr - np.array(CAMVID_BGR[0])[:, None, None]) / np.array(CAMVID_BGR[1])[:, None, None] / 255
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert not conv.identity


def test_input_convention_identity_and_errors():
    conv = InputConvention(*IMAGENET, mean=IMAGENET[0], std=IMAGENET[1])  # ESPNetv2 on an ImageNet dataset
    x = torch.randn(1, 3, 2, 2)
    assert conv.identity and conv(x) is x
    with pytest.raises(ValueError, match="channel_order='GBR'"):
        InputConvention(*IMAGENET, mean=IMAGENET[0], std=IMAGENET[1], channel_order="GBR")
    with pytest.raises(ValueError, match="3 values"):
        InputConvention(*IMAGENET, mean=[0.5, 0.5], std=IMAGENET[1])


def test_config_picks_convention_by_dataset_name():
    cfg = compose_cfg(["model=espnet", "dataset=camvid"])
    m = instantiate(cfg.model, _convert_="all")
    assert isinstance(m.input_convention, InputConvention) and m.input_convention.channel_order == "BGR"
    assert m.num_classes == 11 and m.extra_classes == 1
    cfg = compose_cfg(["model=espnet", "dataset=ade20k"])  # no authors' convention: dataset normalisation as is
    assert isinstance(instantiate(cfg.model, _convert_="all").input_convention, torch.nn.Identity)
    cfg = compose_cfg(["model=espnetv2", "dataset=cityscapes", "model.s=1.0"])
    m = instantiate(cfg.model, _convert_="all")
    assert m.input_convention.identity and m.num_classes == 19


# ----------------------------------------------------------------------------- architecture, random weights
@pytest.mark.parametrize(
    "cls,kw,out_hw",
    [(ESPNet, dict(q=3), (38, 50)), (ESPNet, dict(q=3, decoder=False), (5, 7)), (ESPNetv2, dict(s=0.5), (38, 50))],
)
def test_forward_shapes_any_size_and_backward(cls, kw, out_hw):
    """Sizes that are not multiples of the output stride work; every parameter but the PReLU the authors'
    strided EESP blocks never call (``eesp.module_act``) gets a gradient."""
    m = cls(num_classes=5, extra_classes=1, **kw)
    out = m(torch.randn(2, 3, 38, 50))
    assert set(out) == {"out"} and tuple(out["out"].shape) == (2, 5, *out_hw)
    out["out"].mean().backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None]
    assert all(n.endswith("eesp.module_act.weight") for n in no_grad), no_grad


def test_espnetv2_rejects_unknown_width():
    with pytest.raises(ValueError, match=r"s=3.0 not supported; valid: \[0.5, 1.0, 1.25, 1.5, 2.0\]"):
        ESPNetv2(num_classes=19, s=3.0)


# ----------------------------------------------------------------------------- author checkpoints
@pytest.mark.parametrize("fname,kw", ESPNET_FILES + ESPNETV2_FILES, ids=lambda v: v if isinstance(v, str) else "")
def test_author_checkpoint_loads_strictly(shared_data, fname, kw):
    path = shared_data / "weights" / fname
    cls = ESPNetv2 if fname.startswith("espnetv2") else ESPNet
    m = cls(**kw)
    m.load_pretrained(path)
    assert sum(p.numel() for p in m.parameters()) == _checkpoint_param_count(path)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    own = m.state_dict()
    key = "bu_dec_l1.merge_layer.3.weight" if cls is ESPNetv2 else "encoder.level1.conv.weight"
    ck = sd.get(key, sd.get(key.removeprefix("encoder.")))
    assert torch.equal(own[key], ck)


def test_published_parameter_counts(shared_data):
    """Paper/README figures: ESPNet p=2 q=8 0.364 M (Cityscapes), ESPNetv2 s=1.0 0.23 M, s=2.0 0.79 M."""
    counts = {
        f: sum(p.numel() for p in (ESPNetv2 if f.startswith("espnetv2") else ESPNet)(**kw).parameters())
        for f, kw in ESPNET_FILES + ESPNETV2_FILES
    }
    assert round(counts["espnet/decoder/espnet_p_2_q_8.pth"] / 1e6, 3) == 0.365  # 364,569
    assert round(counts["espnetv2/espnetv2_s_1.0_city_1024x512.pth"] / 1e6, 2) == 0.23
    assert round(counts["espnetv2/espnetv2_s_2.0_city_1024x512.pth"] / 1e6, 2) == 0.79


def test_wrong_checkpoint_and_missing_file_errors(shared_data, tmp_path):
    m = ESPNet(num_classes=19, extra_classes=1, q=3)
    with pytest.raises(ValueError, match=r"missing keys .*check p/q/s"):
        m.load_pretrained(shared_data / "weights/espnet/decoder/espnet_p_2_q_8.pth")
    with pytest.raises(ValueError, match=r"shape mismatches .*\(20, 256, 1, 1\)"):
        ESPNet(num_classes=11, extra_classes=1).load_pretrained(
            shared_data / "weights/espnet/decoder/espnet_p_2_q_8.pth"
        )
    m = ESPNetv2(num_classes=19, extra_classes=1, s=1.0, weights_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"espnetv2/nope\.pth.*environment\.weights_dir"):
        m.load_pretrained("nope.pth")


def test_extra_output_dropped_from_out(shared_data):
    """``out`` is the first K channels of the checkpoint's K+1 logits (the extra "ignore" output is dropped)."""
    path = shared_data / "weights/espnet/decoder/espnet_p_2_q_8_camvid.pth"
    dropped, full = ESPNet(num_classes=11, extra_classes=1), ESPNet(num_classes=12, extra_classes=0)
    for m in (dropped, full):
        m.load_pretrained(path)
        m.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = dropped(x)["out"], full(x)["out"]
    assert a.shape[1] == 11 and b.shape[1] == 12 and torch.equal(a, b[:, :11])


# ----------------------------------------------------------------------------- real images
def _camvid_accuracy(shared_data, n: int, extra=()) -> float:
    from datasets import build_dataset
    from datasets.transforms import build_transforms
    from inference import predict_labels

    cfg = compose_cfg(
        [
            "model=espnet",
            "dataset=camvid",
            f"environment.data_root={shared_data}",
            f"environment.weights_dir={shared_data / 'weights'}",
            "model.pretrained=decoder/espnet_p_2_q_8_camvid.pth",
            *extra,
        ]
    )
    model = instantiate(cfg.model, _convert_="all").eval()
    ds = build_dataset(cfg.dataset, "test", build_transforms(None, cfg.dataset.mean, cfg.dataset.std))
    correct = total = 0
    for i in range(0, len(ds), len(ds) // n)[:n]:
        s = ds[i]
        pred = predict_labels(model, s["image"][None])[0]
        valid = s["mask"] != 255
        correct += int((pred[valid] == s["mask"][valid]).sum())
        total += int(valid.sum())
    return correct / total


def test_espnet_camvid_checkpoint_sane_accuracy_on_test_images(shared_data):
    """3 CamVid test frames at 480x360: pixel accuracy of the authors' checkpoint is high only with their
    input convention (the full-split figures are in the README)."""
    acc = _camvid_accuracy(shared_data, 3)
    assert acc > 0.85, acc
    wrong = _camvid_accuracy(shared_data, 3, ["model.input_conventions=null"])  # ImageNet-normalised RGB instead
    assert wrong < acc - 0.05, (acc, wrong)


@pytest.mark.parametrize(
    "model,ckpt,over",
    [
        ("espnet", "decoder/espnet_p_2_q_8.pth", ["model.q=8"]),
        ("espnetv2", "espnetv2_s_1.0_city_1024x512.pth", ["model.s=1.0"]),
        ("espnetv2", "espnetv2_s_2.0_city_1024x512.pth", ["model.s=2.0"]),
    ],
)
def test_cityscapes_checkpoints_on_labelled_frame(shared_data, model, ckpt, over):
    """frankfurt_000000_000294 at 1024x512 (full-resolution frame resized, bilinear), prediction resized to
    the 256x128 labelled copy (official labelIds -> trainIds): pixel accuracy (README lists the values)."""
    from datasets import build_dataset
    from datasets.transforms import build_transforms
    from inference import predict_labels

    sample = shared_data / "cityscapes_sample"
    cfg = compose_cfg(
        [
            f"model={model}",
            "dataset=cityscapes",
            f"dataset.root={sample / 'val_256x128'}",
            f"environment.weights_dir={shared_data / 'weights'}",
            f"model.pretrained={ckpt}",
            *over,
        ]
    )
    net = instantiate(cfg.model, _convert_="all").eval()
    label = build_dataset(cfg.dataset, "val")[0]["mask"]
    frame = sample / "fullres_2048x1024/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    with Image.open(frame) as im:
        rgb = np.asarray(im.convert("RGB").resize((1024, 512), Image.BILINEAR))
    x = build_transforms(None, cfg.dataset.mean, cfg.dataset.std)(image=rgb)["image"][None]
    pred = predict_labels(net, x, out_size=label.shape)[0]
    valid = label != 255
    acc = float((pred[valid] == label[valid]).float().mean())
    print(f"{model} {ckpt}: pixel accuracy {acc:.4f} on {int(valid.sum())} labelled pixels")
    assert acc > 0.85, acc


@pytest.mark.parametrize(
    "protocol",
    [["model=espnet", "dataset=camvid"], ["experiment=espnet_camvid_authors_eval"]],
    ids=["extra_output_dropped", "authors_eval"],
)
def test_validation_entry_evaluates_author_checkpoint(shared_data, tmp_path, protocol):
    """``validation.py checkpoint=<file.pth> model=espnet dataset=camvid split=test out=DIR`` on a 2-frame copy,
    and the authors' protocol (12 outputs arg-maxed, "Unlabelled" never in the labels: its Acc is NaN)."""
    root = tmp_path / "data" / "camvid"
    for split in ("test", "testannot"):
        (root / split).mkdir(parents=True)
        for name in ("0001TP_008550.png", "Seq05VD_f00030.png"):
            src = shared_data / "camvid" / split / name
            if not src.is_file():
                pytest.skip(f"CamVid test frame {src} missing from the shared data")
            shutil.copy(src, root / split / name)
    out = tmp_path / "val"
    ckpt = shared_data / "weights/espnet/decoder/espnet_p_2_q_8_camvid.pth"
    argv = [
        f"checkpoint={ckpt}",
        *protocol,
        "split=test",
        f"environment.data_root={tmp_path / 'data'}",
        f"out={out}",
        "device=cpu",
        "num_vis=0",
    ]
    assert run_in_process("validation.py", validation.main, argv) == 0  # in-process validation.py
    m = json.loads((out / "metrics.json").read_text())
    assert m["weights_loaded_by"] == "load_pretrained" and m["split"] == "test" and m["num_images"] == 2
    assert m["aAcc"] > 0.85 and 0.3 < m["mIoU"] < 1, m
    assert (out / "per_class.csv").is_file() and (out / "ConfusionMatrix.pt").is_file()
    assert len(m["Acc"]) == (12 if "authors_eval" in protocol[0] else 11)
    if "authors_eval" in protocol[0]:
        assert m["Acc"]["Unlabelled"] is None and m["IoU"]["Unlabelled"] in (0.0, None)


def test_espnet_camvid_experiment_finetunes_from_the_authors_checkpoint(shared_data):
    from training.module import SegmentationModule

    cfg = compose_cfg(["experiment=espnet_camvid", f"environment.weights_dir={shared_data / 'weights'}"])
    assert list(cfg.lossfunction) == ["wCE"] and cfg.model.pretrained == "decoder/espnet_p_2_q_8_camvid.pth"
    module = SegmentationModule(cfg)
    ck = torch.load(
        shared_data / "weights/espnet/decoder/espnet_p_2_q_8_camvid.pth", map_location="cpu", weights_only=True
    )
    assert torch.equal(module.model.classifier.weight, ck["classifier.weight"])
    batch = {"image": torch.randn(1, 3, 64, 96), "mask": torch.randint(0, 11, (1, 64, 96))}
    module.trainer = SimpleNamespace(estimated_stepping_batches=10)  # all configure_optimizers reads
    opt = module.configure_optimizers()["optimizer"]
    loss = module.criterion(module(batch["image"]), batch["mask"])[0]
    loss.backward()
    w0, g = module.model.classifier.weight.detach().clone(), module.model.classifier.weight.grad
    opt.step()
    # the recipe's AdamW (lr 5e-4, weight decay 5e-4), first step: w1 = w0 (1 - lr wd) - lr g / (|g| + eps)
    lr, wd = 5.0e-4, 5.0e-4
    assert torch.isfinite(loss) and g.any()
    assert torch.allclose(module.model.classifier.weight, w0 * (1 - lr * wd) - lr * g / (g.abs() + 1e-8), atol=1e-9)
