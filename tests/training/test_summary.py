"""training/summary.py without a training run: failure record, atomic rewrite, state carried over a resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import TINY_RUN, compose_cfg
from training.summary import RunSummary
from training.train import train

CFG = OmegaConf.create({"seed": 3, "dataset": {"name": "camvid", "num_classes": 2, "class_names": ["a", "b"]}})


def _trainer(tmp_path):
    return SimpleNamespace(is_global_zero=True, default_root_dir=str(tmp_path), max_epochs=3, global_step=5)


def test_exception_writes_failed_with_one_line_error(tmp_path):
    cb = RunSummary(CFG)
    module = SimpleNamespace(device=torch.device("cpu"))  # no model: the static part falls back to the minimum
    cb.on_exception(_trainer(tmp_path), module, RuntimeError("boom\nsecond line"))
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"] == "RuntimeError: boom"
    assert s["steps_done"] == 5 and s["max_epochs"] == 3 and s["ended"] is not None
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left behind


def test_state_survives_a_resume_and_times_add_up(tmp_path):
    first = RunSummary(CFG)
    first.state.update(train_s=10.0, images=40, epochs_done=2, best={"epoch": 1, "mIoU": 0.5})
    first._t_fit = None
    saved = first.state_dict()
    second = RunSummary(CFG)
    second.load_state_dict(saved)
    assert second.state["train_s"] == 10.0 and second.state["best"] == {"epoch": 1, "mIoU": 0.5}
    assert second.state["started"] == first.state["started"]
    second.on_train_epoch_start(None, None)
    second.on_train_batch_end(None, None, {"loss": torch.tensor(2.0)}, {"image": torch.zeros(4, 3, 2, 2)}, 0)
    second.on_train_batch_end(None, None, {"loss": torch.tensor(4.0)}, {"image": torch.zeros(4, 3, 2, 2)}, 1)
    assert second.state["images"] == 48 and second.state["train_s"] > 10.0 and len(second._durations) == 2
    trainer = SimpleNamespace(current_epoch=2, is_global_zero=False)
    second.on_train_epoch_end(trainer, None)
    assert second.state["last"] == {"epoch": 2, "train_loss": 3.0} and second.state["epochs_done"] == 3


def test_images_per_s_counts_every_rank(tmp_path):
    """Under DDP rank 0 writes summary.json: its batches stand for ``world_size`` times as many images."""
    from training.summary import images_of_batch

    batch = {"image": torch.zeros(4, 3, 2, 2)}
    assert images_of_batch(SimpleNamespace(world_size=2), batch) == 8
    assert images_of_batch(None, batch) == 4
    cb = RunSummary(CFG)
    trainer = SimpleNamespace(**vars(_trainer(tmp_path)), world_size=2, accumulate_grad_batches=1)
    cb.on_train_epoch_start(trainer, None)
    for i in range(3):
        cb.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, batch, i)
    t = cb.content(trainer, SimpleNamespace(device=torch.device("cpu")), "running")["time"]
    assert t["train_images"] == 3 * 4 * 2
    assert cb.state["train_s"] > 0 and t["images_per_s"] == pytest.approx(24 / cb.state["train_s"], rel=1e-12)


def _train_loss(tmp_path, name, accumulate: int) -> float:
    # lr=0: the weights stay put, so both runs see the same losses on the same (seeded) batches
    cfg = compose_cfg([*TINY_RUN, "num_vis=0", "lr=0", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1"])
    cfg.trainer.accumulate_grad_batches = accumulate
    train(cfg, tmp_path / name)
    return json.loads((tmp_path / name / "summary.json").read_text())["last"]["train_loss"]


def test_train_loss_does_not_depend_on_gradient_accumulation(tmp_path):
    one, two = _train_loss(tmp_path, "acc1", 1), _train_loss(tmp_path, "acc2", 2)
    assert one > 0.1 and two == one  # not divided by accumulate_grad_batches
