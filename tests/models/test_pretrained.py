"""Encoder weights by name/path/hub (models/pretrained.py) and the normalisation they carry (models/smp.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import timm
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from inference.loading import compose_config
from models import SMPModel, pretrained
from models.build import build_model
from tests.conftest import REPO, SHARED_DATA

LITE = {0: "efficientnet_lite0_imagenet", 2: "efficientnet_lite2_imagenet"}


def _file_tensors(name: str) -> list[torch.Tensor]:
    """The registry file's tensors in stored order, without ``num_batches_tracked``."""
    path = pretrained.locate(pretrained.registry()[name], name, None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return [v for k, v in state.items() if not k.endswith("num_batches_tracked")]


@pytest.mark.parametrize("k", sorted(LITE))
def test_named_weights_reproduce_the_stored_tensors_exactly(k):
    name = LITE[k]
    entry = pretrained.registry()[name]
    assert pretrained.sha256(pretrained.locate(entry, name, None)) == entry["sha256"]
    stored = _file_tensors(name)
    reference_keys = [
        key
        for key in timm.create_model(f"tf_efficientnet_lite{k}", pretrained=False).state_dict()
        if not key.endswith("num_batches_tracked")
    ]
    assert len(stored) == len(reference_keys) == (247 if k == 0 else len(stored))
    by_key = dict(zip(reference_keys, stored))  # "ordered": file tensor #i is timm tensor #i
    model = SMPModel("Unet", f"tu-tf_efficientnet_lite{k}", num_classes=11, encoder_weights=name)
    encoder = {k2: v for k2, v in model.net.encoder.state_dict().items() if not k2.endswith("num_batches_tracked")}
    assert len(encoder) > 200
    for key, value in encoder.items():
        assert torch.equal(value, by_key[key.removeprefix("model.")]), key
    assert model.pretrained_cfg["mean"] == [0.5] * 3 and model.pretrained_cfg["licence"].startswith("Apache-2.0")


def _imagenet_probs(photo: str) -> torch.Tensor:
    """Softmax of tf_efficientnet_lite0 with the mapped file on a whole photo resized to 224x224 (bilinear),
    TF preprocessing (mean 0.5, std 0.5)."""
    path = SHARED_DATA / "photos" / photo
    if not path.is_file():
        pytest.fail(f"{path} is absent: set SEGBENCH_SHARED_DATA to the folder holding photos/")
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    net.load_state_dict(pretrained.timm_state(LITE[0]))
    img = TF.resize(Image.open(path).convert("RGB"), [224, 224], TF.InterpolationMode.BILINEAR)
    x = TF.normalize(TF.to_tensor(img), [0.5] * 3, [0.5] * 3)
    with torch.no_grad():
        return net(x[None])[0].softmax(0)


def test_mapped_lite0_classifier_recognises_chelsea_and_coffee():
    cat, coffee = _imagenet_probs("chelsea.png"), _imagenet_probs("coffee.png")
    assert int(cat.argmax()) == 285 and float(cat[285]) > 0.7  # Egyptian cat (0.79)
    assert int(coffee.argmax()) == 967 and float(coffee[967]) > 0.8  # espresso (0.90)


def _one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_wrong_file_or_architecture_fails_in_one_line(tmp_path, monkeypatch):
    # the lite2 file under the lite0 name: tensor counts and shapes differ
    entries = {n: dict(e) for n, e in pretrained.registry().items()}
    wrong = dict(entries[LITE[0]], file=entries[LITE[2]]["file"], sha256=None)
    monkeypatch.setattr(pretrained, "registry", lambda: {**entries, "wrong": wrong})
    with pytest.raises(ValueError) as e:
        SMPModel("Unet", "tu-tf_efficientnet_lite0", num_classes=2, encoder_weights="wrong")
    msg = _one_line(e)
    assert "efficientnet-lite2-9656183e.pth" in msg and "247 tensors expected" in msg and "found _blocks." in msg
    # a file whose bytes differ from the registered SHA-256
    monkeypatch.setattr(pretrained, "registry", lambda: {**entries, "wrong": dict(wrong, sha256="0" * 64)})
    with pytest.raises(ValueError, match="sha256 9656183e") as e:
        SMPModel("Unet", "tu-tf_efficientnet_lite0", num_classes=2, encoder_weights="wrong")
    _one_line(e)
    monkeypatch.undo()
    # the right file for another encoder
    with pytest.raises(ValueError, match="hold tf_efficientnet_lite0 tensors; encoder 'tu-resnet18'") as e:
        SMPModel("Unet", "tu-resnet18", num_classes=2, encoder_weights=LITE[0])
    _one_line(e)
    # a local file made for another encoder
    torch.save(SMPModel("Unet", "resnet18", num_classes=2).net.encoder.state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError) as e:
        SMPModel("Unet", "tu-tf_efficientnet_lite0", num_classes=2, encoder_weights=str(tmp_path / "r18.pth"))
    msg = _one_line(e)
    assert str(tmp_path / "r18.pth") in msg and "tensors expected" in msg and "missing e.g. ['model.conv_stem" in msg
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        SMPModel("Unet", "resnet18", num_classes=2, encoder_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match=r"no registered weights name \(\['efficientnet_lite0_imagenet'"):
        SMPModel("Unet", "resnet18", num_classes=2, encoder_weights="imagenet")


def test_local_encoder_file_loads_exactly(tmp_path):
    src = SMPModel("Unet", "resnet18", num_classes=2)
    torch.save(src.net.encoder.state_dict(), tmp_path / "enc.pth")
    dst = SMPModel("Unet", "resnet18", num_classes=2, encoder_weights=str(tmp_path / "enc.pth"))
    loaded = dst.net.encoder.state_dict()
    for k, v in src.net.encoder.state_dict().items():
        assert torch.equal(v, loaded[k])
    assert isinstance(dst.input_norm, torch.nn.Identity) and dst.pretrained_cfg["file"] == str(tmp_path / "enc.pth")


LITE0 = ["model.encoder=tu-tf_efficientnet_lite0", f"model.encoder_weights={LITE[0]}"]


def test_normalisation_travels_with_the_model_config():
    cfg = compose_config(LITE0)
    assert cfg.model.input_norm == {"mean": [0.5] * 3, "std": [0.5] * 3}
    # evaluating entry points build without reloading the weights: the convention stays
    model = build_model(cfg.model, init_weights=False).eval()
    assert model.pretrained_cfg is None
    rgb = torch.rand(1, 3, 8, 8)
    mean, std = torch.tensor(cfg.dataset.mean).view(1, 3, 1, 1), torch.tensor(cfg.dataset.std).view(1, 3, 1, 1)
    x = (rgb - mean) / std  # what the dataset pipeline feeds
    torch.testing.assert_close(model.input_norm(x), (rgb - 0.5) / 0.5, rtol=0, atol=1e-5)
    # no weights or a local file: the dataset normalisation as is, unless input_norm is given
    assert compose_config([]).model.input_norm is None
    assert isinstance(build_model(compose_config([]).model).input_norm, torch.nn.Identity)
    given = compose_config(["model.encoder_weights=/x/enc.pth", "model.input_norm={mean:[0.5,0.5,0.5],std:[1,1,1]}"])
    assert given.model.input_norm == {"mean": [0.5] * 3, "std": [1.0] * 3}


def test_hub_weights_take_their_norm_from_timm_and_never_download_offline(tmp_path):
    assert pretrained.input_norm("hub", "tu-tf_efficientnet_lite0") == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert pretrained.hub_weights("hub", "tu-resnet18") is True and pretrained.hub_weights("hub", "resnet18") == (
        "imagenet"
    )
    code = (
        "from models import SMPModel\n"
        "try:\n    SMPModel('Unet', 'tu-resnet18', num_classes=2, encoder_weights='hub')\n"
        "except Exception as e:\n    print('REFUSED', type(e).__name__)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert "REFUSED" in out.stdout, out.stderr[-2000:]
    assert not (tmp_path / "hf" / "hub" / "models--timm--resnet18.a1_in1k" / "blobs").exists()


@pytest.mark.parametrize("experiment", ["camvid_embedded", "camvid_lite0_pretrained"])
def test_pretrained_recipes_compose_and_build(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.model.encoder_weights == LITE[0] and cfg.model.input_norm == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert cfg.freeze_encoder_epochs == 2 and cfg.unfreeze_lr_factor == 0.5
    assert cfg.lr_scheduler.scheduler._target_.endswith("OneCycleLR")
    model = build_model(cfg.model)
    assert model.pretrained_cfg["sha256"] == pretrained.registry()[LITE[0]]["sha256"]
