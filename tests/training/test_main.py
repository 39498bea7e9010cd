"""main.py end to end through Hydra on the embedded CamVid subset, and its one-line errors."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from core.run_folder import RunFolder
from tests.conftest import REPO, TINY_RUN, call_hydra_cli, run_entry


def _run_dir_from_output(text: str) -> Path:
    found = re.findall(r"Run folder: (\S+)", text)
    assert found, text[-3000:]
    return Path(found[-1])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    proc = run_entry("main.py", *TINY_RUN, "epochs=2", f"LOGDIR={logdir}", "precision=bf16-mixed", "channels_last=true")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return logdir, proc, _run_dir_from_output(proc.stdout + proc.stderr)


def test_run_folder_has_every_promised_file(tiny_run):
    logdir, _proc, run_dir = tiny_run
    run = RunFolder(run_dir)
    assert run.missing() == []
    # LOGDIR/<dataset>/<model>/<experiment>__<overrides>/<date>/
    rel = run_dir.relative_to(logdir).parts
    assert rel[0] == "camvid" and rel[1] == "smp"
    assert rel[2].startswith("default__") and "epochs-2" in rel[2] and "LOGDIR" not in rel[2]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", rel[3])
    cm = torch.load(run.confusion_matrix)
    assert cm.shape == (11, 11) and cm.dtype == torch.int64
    # TINY_RUN validates 2 batches of 2: the first 4 val frames in full (CamVid label 11 = Unlabelled ignored)
    first4 = sorted((REPO / "data" / "camvid" / "valannot").glob("*.png"))[:4]
    assert cm.sum().item() == sum(int((np.asarray(Image.open(p)) < 11).sum()) for p in first4)
    log = run.log_file.read_text()
    assert "val mIoU=" in log and str(run.root) in log


def test_hparams_is_the_resolved_config(tiny_run):
    _, _, run_dir = tiny_run
    cfg = RunFolder(run_dir).load_config()
    assert "${" not in OmegaConf.to_yaml(cfg)
    assert cfg.epochs == 2 and cfg.precision == "bf16-mixed" and cfg.model.arch == "Unet"


def test_checkpoints_reload_and_best_matches_confusion_matrix(tiny_run):
    _, _, run_dir = tiny_run
    run = RunFolder(run_dir)
    ckpt = torch.load(run.best_ckpt, map_location="cpu", weights_only=False)
    assert any(k.startswith("model.") for k in ckpt["state_dict"])
    best = ckpt["callbacks"]
    scores = [v["best_model_score"] for k, v in best.items() if k.startswith("ModelCheckpoint")]
    from metrics import metrics_from_confusion

    assert float(scores[0]) == pytest.approx(metrics_from_confusion(torch.load(run.confusion_matrix))["mIoU"], abs=1e-6)


def test_per_epoch_val_miou_and_run_folder_printed(tiny_run):
    _, proc, run_dir = tiny_run
    out = proc.stdout + proc.stderr
    assert len(re.findall(r"Epoch \d+: val mIoU=\d\.\d{4}", out)) == 2
    assert f"Run folder: {run_dir}" in out


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.arch=NoSuchNet"], "unknown smp architecture 'NoSuchNet'; valid: "),
        (["model.encoder=resnet999"], "unknown smp encoder 'resnet999'; valid: "),
        (
            ["lossfunction=[CE,CE]", "lossweight=[1.0,0.4]"],
            "lossfunction has 2 entries ['CE', 'CE'] but the model has 1 outputs",
        ),
        (["lossfunction=[NoLoss]"], "unknown lossfunction 'NoLoss'"),
        (
            ["environment.data_root=/nonexistent/folder"],
            "data root /nonexistent/folder/camvid does not exist; expected layout",
        ),
        (["model=no_such_model"], "Could not find 'model/no_such_model'"),
    ],
)
def test_bad_input_gives_one_clear_error(overrides, message, tmp_path, capsys):
    # in-process main.cli (the exit status as a process is pinned in tests/reliability/test_main_faults.py)
    code = call_hydra_cli("main", [*TINY_RUN, f"LOGDIR={tmp_path}", *overrides])
    err = capsys.readouterr().err
    assert code != 0
    assert message in err, err[-3000:]


def test_csv_logger_writes_metrics_and_keeps_resolved_hparams(tmp_path):
    assert call_hydra_cli("main", [*TINY_RUN, f"LOGDIR={tmp_path}", "logger=csv"]) == 0
    run = RunFolder(next(p for p in tmp_path.glob("camvid/smp/*/*") if p.is_dir()))
    assert run.missing() == []
    assert "val/mIoU" in (run.root / "metrics.csv").read_text().splitlines()[0]
    assert run.load_config().model.arch == "Unet"  # not overwritten by the logger
