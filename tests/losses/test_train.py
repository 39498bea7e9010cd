"""``python main.py lossfunction=[wRMI] ...`` trains end to end (embedded CamVid subset, tiny run)."""

import math

import pandas as pd
import torch

from core.run_folder import RunFolder
from tests.conftest import TINY_RUN, call_hydra_cli


def test_main_trains_with_wrmi_and_loss_params(tmp_path):
    run_dir = tmp_path / "run"
    # hydra.run.dir: the default run-folder name (all overrides joined) would exceed 255 characters here
    overrides = ["lossfunction=[wRMI]", "+loss_params.wRMI={pool_way:avg,pool_size:4}", "logger=csv"]
    assert (
        call_hydra_cli("main", [*TINY_RUN, *overrides, "trainer.log_every_n_steps=1", f"hydra.run.dir={run_dir}"]) == 0
    )
    run = RunFolder(run_dir)
    cfg = run.load_config()
    assert list(cfg.lossfunction) == ["wRMI"] and cfg.loss_params.wRMI.pool_way == "avg"
    metrics = pd.read_csv(next(run_dir.rglob("metrics.csv")))
    losses = metrics["train/loss"].dropna()
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    ckpt = torch.load(run.checkpoint("last"), map_location="cpu", weights_only=False)
    # class weights are non-persistent buffers: the checkpoint holds the model, not the loss
    assert not any(k.startswith("criterion.") for k in ckpt["state_dict"])
