"""SegMAN (Fu et al., CVPR 2025): parameter counts equal the paper's, output shapes (padded inputs cropped back),
official checkpoint layouts (MMSeg segmentor, ImageNet encoder with EMA weights) load through the checkpoint reader
and give identical logits, a missing weights file says where to put it, the config composes for every variant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.utils import instantiate

from core.measure import count_flops
from models.checkpoint import load_weights
from models.segman import VARIANTS, SegMAN
from models.segman.weights import to_official
from tests.conftest import compose_cfg

# paper / official README (ADE20K, 150 classes): whole segmentor, encoder + decoder, in millions
PAPER_PARAMS_M = {"t": 6.4, "s": 29.4, "b": 51.8}
EXACT_PARAMS = {"t": 6_397_260, "s": 29_424_636, "b": 51_802_820}
# core.measure.count_flops at 1x3x512x512, 150 classes (1 MAC = 2 FLOPs; NATTEN's and VMamba's kernel formulas)
EXACT_FLOPS = {"t": 11_968_741_376, "s": 49_998_770_688, "b": 114_973_543_712}
REPORTED = Path(__file__).resolve().parents[2] / "tables" / "reported" / "segman.csv"


def paper_gflops_512(variant: str) -> float:
    """The official README's ADE20K "FLOPs" at 512x512 (fvcore / mmcv: multiply-adds), from tables/reported/."""
    rows = pd.read_csv(REPORTED)
    row = rows[(rows.name == f"SegMAN-{variant.upper()}") & (rows.dataset == "ade20k")]
    assert len(row) == 1 and row.resolution.item() == "512x512"
    return float(row.GFLOPs.item())


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and BN statistic drawn at random, so zero-initialised tensors are exercised too."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
    return model.eval()


class TestSegMAN:
    @pytest.mark.parametrize("variant", ["t", "s", "b"])
    def test_parameter_count_equals_the_paper(self, variant):
        with torch.device("meta"):  # counts shapes only: nothing is computed
            model = SegMAN(150, variant)
        count = sum(p.numel() for p in model.parameters())
        assert count == EXACT_PARAMS[variant]
        assert abs(count / 1e6 - PAPER_PARAMS_M[variant]) < 0.05

    @pytest.mark.parametrize("variant", ["t", "s", "b"])
    def test_gflops_at_512_within_5_percent_of_the_paper(self, variant):
        """The paper counts multiply-adds (fvcore/mmcv with NATTEN's and VMamba's kernel handles): twice its figure is
        GFLOPs at 1 MAC = 2 FLOPs, the benchmark's convention."""
        with torch.device("meta"):
            flops = count_flops(SegMAN(150, variant).eval(), torch.empty(1, 3, 512, 512))
        assert flops == EXACT_FLOPS[variant]
        paper = 2 * paper_gflops_512(variant)
        assert abs(flops / 1e9 - paper) / paper < 0.05, (variant, flops / 1e9, paper)

    @pytest.mark.parametrize("size", [(64, 64), (72, 88)])
    def test_output_is_logits_at_the_input_size(self, size):
        torch.manual_seed(0)
        model = SegMAN(5, "t").eval()
        assert model.padded_size(*size) == (224, 224)  # stage-4 window 7 needs a 7x7 map at 1/32
        with torch.no_grad():
            out = model(torch.randn(1, 3, *size))
        assert model.output_names == ("out",)
        assert out["out"].shape == (1, 5, *size) and out["out"].dtype == torch.float32
        assert torch.isfinite(out["out"]).all()

    def test_padding_to_multiples_of_32(self):
        model_t = SegMAN.__new__(SegMAN)
        model_t.variant = VARIANTS["t"]
        assert model_t.padded_size(512, 683) == (512, 704)
        assert model_t.padded_size(1024, 2048) == (1024, 2048)

    def test_official_segmentor_checkpoint_gives_identical_logits(self, tmp_path):
        """Our weights renamed to the official MMSeg layout, saved in MMSeg's container, load back through
        models.checkpoint.load_weights (-> SegMAN.load_pretrained) into a differently initialised model."""
        torch.manual_seed(0)
        source = _randomise(SegMAN(5, "t"), seed=1)
        official = to_official(source.state_dict())
        for key in (
            "backbone.patch_embed.0.weight",
            "backbone.layers.1.0.weight",  # downsampling after stage 1
            "backbone.layers.0.blocks.0.token_mixer.rpb.0",
            "backbone.layers.6.blocks.1.token_mixer.rpb.1",  # stage-4 global bias
            "backbone.layers.4.blocks.3.token_mixer.ssm.x_proj_weight",
            "backbone.layers.2.blocks.0.token_mixer.dwconv.1.running_var",
            "decode_head.linear_c4.proj.weight",
            "decode_head.image_pool.1.conv.weight",
            "decode_head.vssm.token_mixer.A_logs",
            "decode_head.vssm.mlp.dwconv.weight",
            "decode_head.reduce_channels.2.bn.weight",
            "decode_head.cat.conv.weight",
            "decode_head.conv_seg.bias",
        ):
            assert key in official, key
        path = tmp_path / "segman_t_ade.pth"
        torch.save({"meta": {"iter": 160000}, "state_dict": official}, path)

        target = SegMAN(5, "t").eval()
        report = load_weights(target, path)
        assert report["loaded_by"] == "load_pretrained"
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(source(x)["out"], target(x)["out"])

    def test_imagenet_encoder_file_loads_its_ema_weights(self, tmp_path):
        """The release's encoder file: EMA weights preferred, classifier and stored RoPE angles dropped, decoder
        untouched; found by name under <weights_dir>/segman/."""
        source = _randomise(SegMAN(5, "t"), seed=2)
        encoder = {k[len("backbone.") :]: v for k, v in to_official(source.state_dict()).items() if "backbone." in k}
        stale = {k: torch.zeros_like(v) for k, v in encoder.items()}
        extras = {"classifier.0.weight": torch.zeros(1024, 192, 1, 1), "layers.0.rope.angle": torch.zeros(16)}
        (tmp_path / "segman").mkdir()
        torch.save(
            {"state_dict": {**stale, **extras}, "state_dict_ema": {**encoder, **extras}, "epoch": 300},
            tmp_path / "segman" / "SegMAN_Encoder_t.pth.tar",
        )
        torch.manual_seed(0)
        fresh_decoder = SegMAN(5, "t").decoder.state_dict()
        torch.manual_seed(0)
        model = SegMAN(5, "t", pretrained="ImageNet", weights_dir=str(tmp_path))
        for k, v in source.encoder.state_dict().items():
            assert torch.equal(model.encoder.state_dict()[k], v), k
        for k, v in fresh_decoder.items():
            assert torch.equal(model.decoder.state_dict()[k], v), k

    def test_missing_weights_file_says_where_to_put_it(self, tmp_path):
        with pytest.raises(FileNotFoundError) as err:
            SegMAN(5, "s", pretrained="ImageNet", weights_dir=str(tmp_path))
        message = str(err.value)
        assert "\n" not in message
        assert str(tmp_path / "segman" / "SegMAN_Encoder_s.pth.tar") in message

    def test_wrong_variant_file_is_refused(self, tmp_path):
        path = tmp_path / "t.pth"
        torch.save({"state_dict": to_official(SegMAN(5, "t").state_dict())}, path)
        with torch.device("meta"):
            model_s = SegMAN(5, "s")
        with pytest.raises(ValueError, match="does not fit SegMAN-S"):
            model_s.load_pretrained(path)

    def test_unknown_variant_is_an_error(self):
        with pytest.raises(ValueError, match="valid: \\['b', 's', 't'\\]"):
            SegMAN(5, "xl")

    @pytest.mark.parametrize("variant", ["t", "s", "b"])
    def test_config_composes(self, variant):
        cfg = compose_cfg(["model=segman", f"model.variant={variant}"])
        assert cfg.model._target_ == "models.SegMAN" and cfg.model.variant == variant
        assert cfg.model.num_classes == cfg.dataset.num_classes and cfg.model.pretrained is None
        if variant == "t":  # the larger ones take seconds to initialise; their sizes are checked above
            model = instantiate(cfg.model, _convert_="all")
            assert model.variant == VARIANTS["t"] and model.num_classes == cfg.dataset.num_classes


def test_the_models_page_shows_these_counts():
    """The SegMAN table of docs/models.md: exact parameter counts, GFLOPs and their difference to twice the paper."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    for variant in ("t", "s", "b"):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{variant}`"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[3] == f"{EXACT_PARAMS[variant]:,}"
        paper = 2 * paper_gflops_512(variant)
        gflops = EXACT_FLOPS[variant] / 1e9
        diff = f"{100 * (gflops - paper) / paper:.1f}".replace("-", "−")
        assert cells[4].startswith(f"{gflops:.2f} (") and f"{paper:.1f}, {diff} %)" in cells[4], cells[4]
        published = pd.read_csv(REPORTED).set_index(["name", "dataset"]).loc[(f"SegMAN-{variant.upper()}", "ade20k")]
        assert cells[5] == f"{published.params} M, {published.GFLOPs} GFLOPs, {published.mIoU} mIoU"
