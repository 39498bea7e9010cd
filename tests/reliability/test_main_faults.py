"""main.py faults: non-finite loss/weights, config and data errors, run-folder names and collisions."""

from __future__ import annotations

import multiprocessing
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from core.run_folder import RunFolder, claim_folder, quote_path_overrides, safe_name
from tests.conftest import REPO, call_hydra_cli, compose_cfg, error_line, run_entry
from tests.reliability.conftest import RUN_ARGS, tree_hash
from training.guards import NonFiniteError
from training.train import train


def _all_finite(path: Path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return all(bool(torch.isfinite(t).all()) for t in state.values() if t.is_floating_point())


def test_nan_loss_stops_with_one_line_and_writes_no_checkpoint(tmp_path, capsys):
    """lr=1e30: the weights blow up after the first step; the run stops, exit 1, no checkpoint at all."""
    code = call_hydra_cli("main", [*RUN_ARGS, "lr=1e30", f"LOGDIR={tmp_path}", "epochs=2"])
    line = error_line(capsys.readouterr().err, "main.py")
    assert code == 1
    assert re.search(r"non-finite (weight \S+ after|loss at) epoch 0, step \d", line), line
    assert not list(tmp_path.rglob("*.ckpt"))


def test_weights_turning_nan_keep_last_ckpt_the_last_good_one(finished_run, tmp_path, capsys):
    """A weight turns NaN in epoch 1 (after step 3): the run stops naming epoch/step/tensor, exit 1; last.ckpt
    and best.ckpt stay the finite ones of epoch 0."""
    run = tmp_path / "run"
    args = [*RUN_ARGS, "epochs=2", "+callbacks.poison._target_=tests.reliability.poison.PoisonAtStep"]
    with pytest.raises(NonFiniteError, match=r"non-finite weight model\.net\.\S+ after epoch 1, step 3"):
        train(compose_cfg([*args, "+callbacks.poison.step=3"]), run)
    ckpt = torch.load(RunFolder(run).last_ckpt, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2 and _all_finite(RunFolder(run).last_ckpt) and _all_finite(RunFolder(run).best_ckpt)


def test_non_finite_checkpoint_is_never_written(tmp_path):
    """The guard refuses to save: a NaN introduced at the very end of epoch 0 (after its last step) is caught
    at the latest by the checkpoint check; no file exists afterwards."""
    from training.guards import NonFiniteGuard

    guard = NonFiniteGuard()
    with pytest.raises(NonFiniteError, match="refusing to save a checkpoint with non-finite tensor model.w"):
        guard.on_save_checkpoint(
            type("T", (), {"current_epoch": 3, "global_step": 7})(),
            None,
            {"state_dict": {"model.w": torch.tensor([float("inf")])}},
        )


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.arch=NoSuchNet"], "unknown smp architecture 'NoSuchNet'"),
        (["lossfunction=[CE,CE]", "lossweight=[1.0,0.4]"], "lossfunction has 2 entries"),
        (["environment.data_root=/nonexistent/folder"], "data root /nonexistent/folder/camvid does not exist"),
        (["foo=1"], "Could not override 'foo'"),
        (["model=no_such_model"], "Could not find 'model/no_such_model'"),
        (["lr_scheduler=nope"], "Could not find 'lr_scheduler/nope'"),
    ],
)
def test_config_errors_are_one_line_and_leave_no_folder(overrides, message, tmp_path, capsys):
    code = call_hydra_cli("main", [*RUN_ARGS, f"LOGDIR={tmp_path}", *overrides])
    line = error_line(capsys.readouterr().err, "main.py")
    assert code == 1 and message in line, line
    assert list(tmp_path.iterdir()) == []  # no empty run folder (nor its parents) left behind


def test_bad_val_label_fails_before_the_first_step(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "camvid", data / "camvid")
    bad = sorted((data / "camvid" / "valannot").glob("*.png"))[5]
    Image.new("L", Image.open(bad).size, 200).save(bad)
    logdir = tmp_path / "logs"
    code = call_hydra_cli("main", [*RUN_ARGS, f"LOGDIR={logdir}", f"environment.data_root={data}"])
    line = error_line(capsys.readouterr().err, "main.py")
    assert code == 1 and f"label {bad} has values [200] outside the 11 classes" in line
    assert not logdir.exists() or list(logdir.iterdir()) == []  # failed before training: nothing written


def test_corrupt_train_image_names_the_file(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data" / "camvid", data / "camvid")
    bad = sorted((data / "camvid" / "train").glob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated PNG
    args = [*RUN_ARGS, f"LOGDIR={tmp_path / 'logs'}", f"environment.data_root={data}", "trainer.limit_train_batches=12"]
    code = call_hydra_cli("main", args)
    line = error_line(capsys.readouterr().err, "main.py")
    assert code == 1 and f"cannot read image {bad}" in line


def test_run_folder_names_take_only_safe_characters(finished_run):
    name = finished_run.parent.name
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
    assert "dataset.crop_size-64-96" in name and "logger-csv-tensorboard" in name
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?", finished_run.name)
    overrides = (finished_run / "hydra" / "overrides.yaml").read_text()
    assert "dataset.crop_size=[64,96]" in overrides  # the full overrides stay in hydra/overrides.yaml
    assert safe_name("a=[1, 2],b='x y'") == "a-1-_2-b-x_y"


def _claim(path):
    return str(claim_folder(path))


def test_identical_runs_started_together_get_two_folders(tmp_path):
    """Atomic creation: 4 processes asking for the same run folder at once get 4 different folders."""
    target = tmp_path / "camvid" / "smp" / "default" / "2026-01-01_00-00-00"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        got = pool.map(_claim, [target] * 4)
    assert sorted(got) == sorted([str(target)] + [f"{target}_{i}" for i in (1, 2, 3)])
    # main.py's run folder goes through the same claim (config/train.yaml hydra.run.dir)
    hydra_cfg = compose_cfg([], return_hydra_config=True).hydra
    from omegaconf import OmegaConf

    assert OmegaConf.to_container(hydra_cfg.run, resolve=False)["dir"].startswith("${claim_run_dir:")


def test_old_run_folder_names_are_quoted_for_hydra():
    old = "/logs/camvid/smp/default__epochs=2,crop=[64,96]/2026-01-01_00-00-00/checkpoints/best.ckpt"
    assert quote_path_overrides([f"+finetune_from={old}", "lr=0.1"], ("finetune_from",)) == [
        f"+finetune_from='{old}'",
        "lr=0.1",
    ]


def test_finetune_from_an_old_style_path_with_a_truncated_file(tmp_path, capsys):
    """An unquoted old-style path (``=``, ``,``, ``[]``) reaches the loader, whose error names the file."""
    ckpt = tmp_path / "default__epochs=2,crop=[64,96]" / "best.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"PK\x03\x04 truncated")
    code = call_hydra_cli("main", [*RUN_ARGS, f"LOGDIR={tmp_path / 'logs'}", f"+finetune_from={ckpt}"])
    line = error_line(capsys.readouterr().err, "main.py")
    assert code == 1 and f"checkpoint {ckpt} cannot be read" in line


def test_main_py_exit_status_and_one_line_as_a_process(tmp_path, capsys):
    """The real process: exit status 1 and exactly one error line for an unknown key; a bad value in-process."""
    proc = run_entry("main.py", f"LOGDIR={tmp_path}", "dataset.test.mod=slide", timeout=300)
    assert proc.returncode == 1
    assert "Could not override 'dataset.test.mod'" in error_line(proc.stderr, "main.py")
    hashes = tree_hash(tmp_path)
    code = call_hydra_cli("main", [*RUN_ARGS, f"LOGDIR={tmp_path}", "model.encoder=resnet999"])  # a bad value
    assert code == 1 and "unknown smp encoder 'resnet999'" in error_line(capsys.readouterr().err, "main.py")
    assert tree_hash(tmp_path) == hashes
