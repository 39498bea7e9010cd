"""segmentation-models-pytorch wrapper: every architecture, any input size, the model contract."""

import pytest
import torch

from models import SMP_ARCHITECTURES, SMPModel

ENCODER = {"DPT": "tu-vit_tiny_patch16_224"}  # DPT needs a ViT encoder from timm


@pytest.mark.parametrize("arch", sorted(SMP_ARCHITECTURES))
class TestArchitecture:
    def test_odd_input_size_is_padded_and_cropped_back(self, arch):
        torch.manual_seed(0)
        kwargs = {"dynamic_img_size": True} if arch == "DPT" else {}
        model = SMPModel(arch, ENCODER.get(arch, "resnet18"), num_classes=5, **kwargs).eval()
        x = torch.randn(1, 3, 130, 150)  # divisible by neither 16 nor 32 (PAN needs >= 128 px)
        with torch.no_grad():
            out = model(x)
        assert tuple(model.output_names) == ("out",) and set(out) == {"out"}
        assert out["out"].shape == (1, 5, 130, 150) and out["out"].dtype == torch.float32


def test_unet_resnet18_parameter_count():
    # smp Unet-resnet18: 14,328,499 params with 3 classes; the 3x3 head adds 16*9+1 per class.
    assert sum(p.numel() for p in SMPModel("Unet", "resnet18", num_classes=11).parameters()) == 14_329_659
    assert sum(p.numel() for p in SMPModel("Unet", "resnet18", num_classes=3).parameters()) == 14_328_499


def test_divisible_input_is_not_padded():
    model = SMPModel("FPN", "resnet18", num_classes=2).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)["out"], model.net(x))


def test_padding_is_in_the_dataset_space_so_exported_graphs_agree():
    """A frame of another size than a multiple of 32 (CamVid 480x360) gives the logits of the zero-padded frame,
    cropped: exactly what an exported graph (traced aligned, padded by its runner) computes, also with the
    pretrained weights' own normalisation (``input_norm``) inside the model."""
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    model = SMPModel("Unet", "resnet18", num_classes=3, input_norm={"mean": [0.5] * 3, "std": [0.5] * 3},
                     data_norm=imagenet).eval()  # fmt: skip
    assert not isinstance(model.input_norm, torch.nn.Identity)
    x = torch.randn(1, 3, 45, 70)
    with torch.no_grad():
        padded = model(torch.nn.functional.pad(x, (0, 26, 0, 19)))["out"][..., :45, :70]
        torch.testing.assert_close(model(x)["out"], padded, rtol=0, atol=1e-5)


def test_named_pretrained_weights_are_refused():
    """Nothing is downloaded; a local encoder file loads (tests/models/test_pretrained.py)."""
    with pytest.raises(ValueError, match="nothing is downloaded"):
        SMPModel("Unet", "resnet18", num_classes=2, encoder_weights="imagenet")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid: \['DPT', 'DeepLabV3'"):
        SMPModel("Unet3", "resnet18", num_classes=2)
    with pytest.raises(ValueError, match="resnet18"):
        SMPModel("Unet", "resnet1", num_classes=2)
