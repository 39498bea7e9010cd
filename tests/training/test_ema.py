"""EMA of the weights (training/ema.py, ``ema.decay``): validation and checkpoints use the EMA, resume continues it.

Hand-made case: a model with one scalar weight ``w`` that predicts class ``k`` nearest to ``w`` at every pixel, and
a callback that sets ``w = step + 0.2`` after each optimizer step. With ``decay = 0.5`` the EMA after steps 1..4
is 1.2, 1.7, 2.45, 3.325 (first update copies ``w``): epoch 1 is validated with class 3 (Road) everywhere, the raw
weight 4.2 would give class 4 (Pavement). The expected mIoU follows from the validation labels alone.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from core.run_folder import RunFolder
from datasets import build_dataset
from datasets.transforms import build_transforms
from metrics import metrics_from_confusion
from tests.conftest import TINY_RUN, compose_cfg
from training.train import train

DECAY, OFFSET = 0.5, 0.2
EMA_AFTER = [1.2, 1.7, 2.45, 3.325]  # steps 1..4, closed form of ema = d*ema + (1-d)*(step + 0.2)


class NearestClassModel(torch.nn.Module):
    """logits[n, k, h, w] = -(k - w)^2: every pixel is predicted as the class nearest to the scalar ``w``."""

    output_names = ("out",)

    def __init__(self, num_classes: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("k", torch.arange(num_classes, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = -((self.k - self.w) ** 2)
        return {"out": logits.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[-2:]) + 0 * x[:, :1]}


class SetWeight(pl.Callback):
    """After every optimizer step: ``w = global_step + 0.2``; records val/mIoU of every (non-sanity) epoch."""

    val_miou: list[float] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        SetWeight.val_miou = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.model.w.data.fill_(trainer.global_step + OFFSET)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            SetWeight.val_miou.append(float(trainer.callback_metrics["val/mIoU"]))


def _cfg(epochs: int, decay=DECAY):
    cfg = compose_cfg(
        [o for o in TINY_RUN if not o.startswith(("epochs=", "num_vis="))]
        + [f"epochs={epochs}", "num_vis=0", f"ema.decay={decay}", "trainer.num_sanity_val_steps=0"]
        + [f"+callbacks.set_weight._target_={__name__}.SetWeight"]
    )
    cfg.model = OmegaConf.create({"_target_": f"{__name__}.NearestClassModel", "num_classes": 11})
    return cfg


def _miou_if_all_predicted(cfg, cls: int) -> float:
    """mIoU of the first 4 validation images (2 batches of 2) when every pixel is predicted as ``cls``."""
    d = cfg.dataset
    val = build_dataset(d, d.val_split, build_transforms(cfg.augmentation.test, d.mean, d.std))
    cm = torch.zeros(11, 11, dtype=torch.int64)
    for i in range(4):
        m = val[i]["mask"]
        cm[:, cls] += torch.bincount(m[m != 255], minlength=11)
    return metrics_from_confusion(cm)["mIoU"]


def _w(run_dir, key: str) -> float:
    ckpt = torch.load(RunFolder(run_dir).last_ckpt, map_location="cpu", weights_only=False)
    return float(ckpt[key]["model.w"])


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ema") / "run"
    result = train(_cfg(epochs=2), run_dir)
    return run_dir, result, list(SetWeight.val_miou)


def test_validation_runs_on_ema_weights(ema_run):
    _, _, val_miou = ema_run
    cfg = _cfg(epochs=2)
    # epoch 0: ema 1.7 -> class 2 (raw 2.2 -> 2 as well); epoch 1: ema 3.325 -> class 3, raw 4.2 -> class 4
    assert val_miou[0] == pytest.approx(_miou_if_all_predicted(cfg, 2), abs=1e-6)
    assert val_miou[1] == pytest.approx(_miou_if_all_predicted(cfg, 3), abs=1e-6)
    assert _miou_if_all_predicted(cfg, 3) != pytest.approx(_miou_if_all_predicted(cfg, 4), abs=1e-3)


def test_checkpoint_holds_ema_and_raw_weights(ema_run):
    run_dir, result, val_miou = ema_run
    assert _w(run_dir, "state_dict") == pytest.approx(EMA_AFTER[3])  # what validation.py/predict.py load
    assert _w(run_dir, "current_model_state") == pytest.approx(4 + OFFSET)
    assert result["best_mIoU"] == pytest.approx(max(val_miou), abs=1e-6)
    best = torch.load(RunFolder(run_dir).best_ckpt, map_location="cpu", weights_only=False)
    assert float(best["state_dict"]["model.w"]) == pytest.approx(EMA_AFTER[2 * result["best_epoch"] + 1])


def test_resume_continues_the_ema(ema_run, tmp_path):
    run_dir = tmp_path / "run"
    train(_cfg(epochs=1), run_dir)
    assert _w(run_dir, "state_dict") == pytest.approx(EMA_AFTER[1])
    train(_cfg(epochs=2), run_dir)  # the folder holds last.ckpt: resumes epoch 1
    # a restarted EMA would copy w at step 3 and end at 0.5 * 3.2 + 0.5 * 4.2 = 3.7
    assert _w(run_dir, "state_dict") == pytest.approx(EMA_AFTER[3])
    assert _w(run_dir, "current_model_state") == pytest.approx(4 + OFFSET)
    assert SetWeight.val_miou == pytest.approx(ema_run[2][1:], abs=1e-6)


def test_ema_off_by_default_and_bad_decay_is_one_line():
    from training.ema import ema_callbacks

    assert ema_callbacks(compose_cfg([])) == []
    with pytest.raises(ValueError, match=r"ema.decay=1.5: expected a float in \(0, 1\)"):
        ema_callbacks(compose_cfg(["ema.decay=1.5"]))
