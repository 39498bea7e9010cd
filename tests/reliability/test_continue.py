"""Training longer with +continue_from: LR re-planned (poly, OneCycle), logs appended, failed continues change nothing."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.run_folder import RunFolder
from tests.conftest import call_hydra_cli, compose_cfg, error_line
from tests.reliability.conftest import RUN_ARGS, tree_hash
from training.train import train

LR0 = 0.01  # config/train.yaml lr


def _state(run, which="last"):
    return torch.load(RunFolder(run).checkpoint(which), map_location="cpu", weights_only=False)


def _lr_rows(run) -> dict[int, float]:
    df = pd.read_csv(run / "metrics.csv")
    rows = df.dropna(subset=["lr-SGD"])
    return {int(s): float(v) for s, v in zip(rows["step"], rows["lr-SGD"])}


def _scalars(run, tag) -> dict[int, float]:
    acc = EventAccumulator(str(run))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_continue_finished_poly_run_with_more_epochs(run_copy, capsys):
    """Poly: lr(s) = lr0 * (1 - s / T_new) ** 0.9 after resuming at step s (training.resume.ReplanSchedule)."""
    before_csv = pd.read_csv(run_copy / "metrics.csv")
    before_tb = _scalars(run_copy, "val/mIoU")
    before = _state(run_copy)
    assert before["global_step"] == 2 and before["optimizer_states"][0]["param_groups"][0]["lr"] == 0.0  # finished

    assert call_hydra_cli("main", [f"+continue_from={run_copy}", "epochs=2"]) == 0
    after = _state(run_copy)
    assert after["global_step"] == 4 and after["epoch"] == 1
    lrs = _lr_rows(run_copy)
    # steps 0, 1 of the first run (planned for T=2), then 2, 3 re-planned for T_new=4
    assert lrs[0] == pytest.approx(LR0) and lrs[1] == pytest.approx(LR0 * 0.5**0.9)
    assert lrs[2] == pytest.approx(LR0 * (1 - 2 / 4) ** 0.9, rel=1e-6) and lrs[2] > 0
    assert lrs[3] == pytest.approx(LR0 * (1 - 3 / 4) ** 0.9, rel=1e-6)
    changed = [k for k in before["state_dict"] if not torch.equal(before["state_dict"][k], after["state_dict"][k])]
    assert len(changed) > 10  # weights moved
    # earlier epochs' metrics intact: CSV rows and TensorBoard scalars of epoch 0 are still there, unchanged
    after_csv = pd.read_csv(run_copy / "metrics.csv")
    pd.testing.assert_frame_equal(after_csv.iloc[: len(before_csv)][before_csv.columns], before_csv)
    assert sorted(after_csv["epoch"].dropna().unique().tolist()) == [0, 1]
    after_tb = _scalars(run_copy, "val/mIoU")
    assert {k: after_tb[k] for k in before_tb} == before_tb and len(after_tb) == len(before_tb) + 1
    assert RunFolder(run_copy).missing() == []
    assert "epochs=2" in (run_copy / "hydra" / "overrides.yaml").read_text()  # the continued config is the run's
    assert "Resuming from" in (run_copy / "main.log").read_text()


def test_continue_finished_onecycle_run_with_more_epochs(tmp_path):
    """OneCycle: the schedule of a run planned for T_new steps, at step s (phases re-planned, LR > 0)."""
    args = [*RUN_ARGS, "lr_scheduler=onecycle"]
    run = tmp_path / "onecycle"
    train(compose_cfg(args), run)
    before = _state(run)
    first_rows = pd.read_csv(run / "metrics.csv")
    train(compose_cfg([*args, "epochs=2", f"+continue_from={run}"]), run)
    after = _state(run)
    assert after["global_step"] == 4
    # closed form of torch's OneCycleLR (cos annealing, pct_start=0.3, div_factor=25, final_div_factor=1e4):
    # T_new = 4, warm-up ends at step 0.3*4-1 = 0.2, annealing to step 3; at step s=2 and s=3:
    max_lr, min_lr = LR0, LR0 / 25 / 1e4

    def anneal(step):
        pct = (step - 0.2) / (3 - 0.2)
        return min_lr + (max_lr - min_lr) / 2 * (1 + math.cos(math.pi * pct))

    lrs = _lr_rows(run)
    assert lrs[2] == pytest.approx(anneal(2), rel=1e-6) and lrs[2] > 1e-3
    assert lrs[3] == pytest.approx(anneal(3), rel=1e-6)
    assert any(not torch.equal(before["state_dict"][k], after["state_dict"][k]) for k in before["state_dict"])
    after_rows = pd.read_csv(run / "metrics.csv")
    pd.testing.assert_frame_equal(after_rows.iloc[: len(first_rows)][first_rows.columns], first_rows)


def _failed_continue(run, argv, capsys) -> str:
    hashes = tree_hash(run)
    capsys.readouterr()
    assert call_hydra_cli("main", argv) == 1
    line = error_line(capsys.readouterr().err, "main.py")
    assert tree_hash(run) == hashes  # nothing in the run folder changed, not even main.log or hydra/
    return line


def test_continue_with_another_encoder_changes_nothing(run_copy, capsys):
    line = _failed_continue(run_copy, [f"+continue_from={run_copy}", "model.encoder=resnet34", "epochs=2"], capsys)
    assert "last.ckpt does not fit the configured model" in line, line
    # resnet34 has more blocks than resnet18: the first extra tensor is named with both sides
    assert "96 tensors differ, first: model.net.encoder.layer1.2.bn1.bias: checkpoint missing vs config (64,)" in line


def test_continue_from_truncated_last_ckpt_names_the_file(run_copy, capsys):
    last = RunFolder(run_copy).last_ckpt
    last.write_bytes(last.read_bytes()[:5000])
    line = _failed_continue(run_copy, [f"+continue_from={run_copy}", "epochs=2"], capsys)
    assert f"checkpoint {last} cannot be read" in line


def test_continue_without_last_ckpt(run_copy, capsys):
    RunFolder(run_copy).last_ckpt.unlink()
    line = _failed_continue(run_copy, [f"+continue_from={run_copy}", "epochs=2"], capsys)
    assert f"no checkpoint {RunFolder(run_copy).last_ckpt}" in line


def test_continue_from_a_folder_that_is_no_run(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert call_hydra_cli("main", [f"+continue_from={tmp_path / 'x'}"]) == 1
    assert "hydra/overrides.yaml is missing" in error_line(capsys.readouterr().err, "main.py")
    assert call_hydra_cli("main", [f"+continue_from={tmp_path / 'nope'}"]) == 1
    assert str(tmp_path / "nope") in error_line(capsys.readouterr().err, "main.py")


def test_continue_with_a_bad_val_label_changes_nothing(run_copy, tmp_path, capsys):
    """The val labels are checked before anything is written (a continue onto moved, damaged data)."""
    data = tmp_path / "data"
    shutil.copytree(RunFolder(run_copy).load_config().dataset.root, data / "camvid")
    bad = sorted((data / "camvid" / "valannot").glob("*.png"))[3]
    from PIL import Image

    Image.new("L", Image.open(bad).size, 77).save(bad)
    line = _failed_continue(
        run_copy, [f"+continue_from={run_copy}", "epochs=2", f"environment.data_root={data}"], capsys
    )
    assert f"label {bad} has values [77]" in line


def test_continue_onecycle_after_unfreeze_keeps_the_factor(tmp_path):
    """A continued OneCycle run whose encoder was already unfrozen keeps ``unfreeze_lr_factor`` on its re-planned
    curve: every LR after resuming equals that of an uninterrupted run of the new length (factor included)."""
    args = [*RUN_ARGS, "lr_scheduler=onecycle", "freeze_encoder_epochs=1", "unfreeze_lr_factor=0.5"]
    run = tmp_path / "two_stage"
    train(compose_cfg([*args, "epochs=2"]), run)  # 4 steps, encoder unfrozen from step 2 on
    assert _state(run)["callbacks"]["FreezeEncoder"] == {"unfrozen": True}
    train(compose_cfg([*args, "epochs=3", f"+continue_from={run}"]), run)  # 2 more steps: s = 4, 5 of T_new = 6
    straight = tmp_path / "straight"
    train(compose_cfg([*args, "epochs=3"]), straight)
    continued, uninterrupted = _lr_rows(run), _lr_rows(straight)
    assert sorted(continued) == sorted(uninterrupted) == list(range(6))
    # closed form: torch's OneCycleLR planned for 6 steps, times the factor from the unfreeze (step 2) on
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR0)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR0, total_steps=6, pct_start=0.3)
    planned = []
    for _ in range(6):
        planned.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert [uninterrupted[s] for s in range(6)] == pytest.approx(
        [lr * (0.5 if s >= 2 else 1.0) for s, lr in enumerate(planned)], rel=1e-6
    )
    assert continued[4] == pytest.approx(0.5 * planned[4], rel=1e-6)  # the first continued step
    assert [continued[s] for s in (4, 5)] == pytest.approx([uninterrupted[s] for s in (4, 5)], rel=1e-9)
