"""Precision, gradient accumulation with the poly schedule, +finetune_from and two-stage freezing (OneCycle runs in
the smp_sweep recipe tests, tests/training/test_recipes.py)."""

from __future__ import annotations

import math

import pytest
import torch

from models import SMPModel
from tests.conftest import TINY_RUN, compose_cfg
from tests.training.probes import Record
from training.finetune import find_encoder, finetune_from, scale_lr
from training.train import train

PROBE = ["+callbacks.record._target_=tests.training.probes.Record"]


def _last(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_bf16_accumulation_counts_optimizer_steps_in_poly(tmp_path):
    # 4 batches, 2 per optimizer step -> 2 steps; poly lr_k = lr0 (1 - k/2)^0.9
    cfg = compose_cfg(
        TINY_RUN
        + PROBE
        + ["precision=bf16-mixed", "trainer.accumulate_grad_batches=2", "trainer.limit_train_batches=4", "lr=0.01"]
        # validate on 64x96 frames: CPUs without AVX-512 BF16 emulate bf16 (slow at full size)
        + ["augmentation.test=[{_target_:albumentations.Resize,height:64,width:96}]"]
    )
    train(cfg, tmp_path / "run")
    ckpt = _last(tmp_path / "run")
    assert ckpt["global_step"] == 2
    sched = ckpt["lr_schedulers"][0]
    assert sched["last_epoch"] == 2 and sched["total_iters"] == 2
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)
    lrs = [r["lr"] for r in Record.seen]  # lr after each batch: changes only after optimizer steps
    assert lrs == pytest.approx([0.01, 0.01 * 0.5**0.9, 0.01 * 0.5**0.9, 0.0])
    assert {r["dtype"] for r in Record.seen} == {torch.bfloat16}


def test_finetune_from_loads_weights_only_and_freezes_then_unfreezes(tmp_path):
    src = compose_cfg(TINY_RUN + ["trainer.limit_train_batches=1"])
    train(src, tmp_path / "src")
    src_ckpt = _last(tmp_path / "src")
    # two-stage: encoder frozen in epoch 0, trains in epoch 1 with lr x 0.25
    cfg = compose_cfg(
        TINY_RUN
        + PROBE
        + [
            "epochs=2",
            "trainer.limit_train_batches=2",
            "~lr_scheduler",
            "optimizer=adamw",
            "lr=0.001",
            "freeze_encoder_epochs=1",
            "unfreeze_lr_factor=0.25",
            f"+finetune_from={tmp_path / 'src' / 'checkpoints' / 'last.ckpt'}",
        ]
    )
    train(cfg, tmp_path / "ft")
    seen = Record.seen
    assert [r["encoder_trains"] for r in seen] == [False, False, True, True]
    assert [r["lr"] for r in seen] == pytest.approx([1e-3, 1e-3, 2.5e-4, 2.5e-4])
    enc0 = sum(
        v.double().sum()
        for k, v in src_ckpt["state_dict"].items()
        if k.startswith("model.net.encoder.")
        and v.is_floating_point()
        and "running" not in k
        and "num_batches" not in k
    )
    assert seen[0]["encoder_sum"] == pytest.approx(float(enc0), rel=1e-9)  # finetune_from weights, frozen
    assert seen[1]["encoder_sum"] == seen[0]["encoder_sum"]
    assert seen[3]["encoder_sum"] != seen[2]["encoder_sum"]
    ft = _last(tmp_path / "ft")
    assert ft["callbacks"]["FreezeEncoder"] == {"unfrozen": True}
    assert ft["global_step"] == 4


def test_frozen_stage_keeps_encoder_and_bn_statistics_then_onecycle_runs_at_half_lr(tmp_path):
    """Two-stage fine-tune (fastai freeze/unfreeze): epoch 0 trains decoder + head only, the encoder's weights and
    BatchNorm running statistics stay bit-identical (BN in eval, also after validation); epoch 1 trains
    everything and the one OneCycle curve continues at half its value."""
    steps_per_epoch, epochs = 3, 2
    cfg = compose_cfg(
        TINY_RUN
        + PROBE
        + [
            f"epochs={epochs}",
            f"trainer.limit_train_batches={steps_per_epoch}",
            "lr_scheduler=onecycle",
            "optimizer=adamw",
            "lr=0.001",
            "freeze_encoder_epochs=1",
        ]
    )
    train(cfg, tmp_path / "run")
    seen, enc0, bn0 = Record.seen, Record.start["encoder_sum"], Record.start["encoder_bn_sum"]
    assert [r["encoder_trains"] for r in seen] == [False] * 3 + [True] * 3
    assert [r["encoder_in_eval"] for r in seen] == [True] * 3 + [False] * 3
    # frozen stage: encoder weights and BN statistics unchanged, the decoder moves
    assert [r["encoder_sum"] for r in seen[:3]] == [enc0] * 3
    assert [r["encoder_bn_sum"] for r in seen[:3]] == [bn0] * 3
    assert len({r["decoder_sum"] for r in seen[:3]}) == 3
    assert seen[3]["encoder_bn_sum"] != bn0 and seen[4]["encoder_sum"] != seen[3]["encoder_sum"]
    # one OneCycle curve over all 6 steps; stage 2 at half of it
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps_per_epoch * epochs, pct_start=0.3)
    expected = []
    for i in range(steps_per_epoch * epochs):
        opt.step()
        ref.step()
        expected.append(opt.param_groups[0]["lr"] * (0.5 if i >= steps_per_epoch else 1.0))
    assert [r["lr"] for r in seen] == pytest.approx(expected, rel=1e-9)


def test_finetune_from_skips_mismatched_head_and_reports(tmp_path):
    a = SMPModel("Unet", "resnet18", num_classes=19)
    b = SMPModel("Unet", "resnet18", num_classes=11)
    torch.save({"state_dict": {f"model.{k}": v for k, v in a.state_dict().items()}}, tmp_path / "a.ckpt")
    report = finetune_from(b, tmp_path / "a.ckpt")
    assert report["shape_mismatch"] == ["net.segmentation_head.0.bias", "net.segmentation_head.0.weight"]
    assert report["unexpected"] == [] and len(report["loaded"]) == len(b.state_dict()) - 2
    assert torch.equal(b.net.encoder.conv1.weight, a.net.encoder.conv1.weight)
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        finetune_from(b, tmp_path / "nope.ckpt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="no tensor"):
        finetune_from(b, tmp_path / "other.pth")


def test_find_encoder_and_scale_lr():
    m = SMPModel("FPN", "resnet18", num_classes=3)
    assert find_encoder(m) is m.net.encoder
    with pytest.raises(ValueError, match="encoder"):
        find_encoder(torch.nn.Conv2d(1, 1, 1))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    scale_lr(opt, 0.5, [sched])
    g = opt.param_groups[0]
    assert g["max_lr"] == pytest.approx(0.05) and g["initial_lr"] == pytest.approx(0.05 / 25)
    assert math.isclose(sched.base_lrs[0], 0.05 / 25)
