"""training/summary.py without a training run: failure record, atomic rewrite, state carried over a resume."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from training.summary import RunSummary

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
