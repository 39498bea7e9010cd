"""Determinism (seed + deterministic=true: bit-identical CPU runs) and resume after SIGKILL mid-epoch."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from core.run_folder import RunFolder, RunFolderError
from tests.conftest import TINY_RUN, call_hydra_cli, compose_cfg, run_entry
from training.resume import continue_from_argv
from training.train import train

# 2 epochs x 2 optimizer steps, no image logging; deterministic algorithms
TINY2 = [o for o in TINY_RUN if not o.startswith(("epochs=", "num_vis="))] + [
    "epochs=2",
    "num_vis=0",
    "deterministic=true",
]
KILL = ["+callbacks.kill._target_=tests.training.killer.KillAtStep", "+callbacks.kill.step=3"]  # mid epoch 1


def _ckpt(run_dir, which="last"):
    return torch.load(RunFolder(run_dir).checkpoint(which), map_location="cpu", weights_only=False)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 2-epoch deterministic run, in-process."""
    out = tmp_path_factory.mktemp("ref")
    result = train(compose_cfg(TINY2), out / "a")
    yield out / "a", result
    torch.use_deterministic_algorithms(False)


def test_two_seeded_runs_are_bit_identical(reference_run, tmp_path):
    ref_dir, ref = reference_run
    again = train(compose_cfg(TINY2), tmp_path / "b")
    a, b = _ckpt(ref_dir), _ckpt(tmp_path / "b")
    assert a["global_step"] == b["global_step"] == 4 and a["epoch"] == 1
    _assert_same_state(a["state_dict"], b["state_dict"])
    assert a["optimizer_states"][0]["param_groups"][0]["lr"] == b["optimizer_states"][0]["param_groups"][0]["lr"]
    assert again["best_mIoU"] == ref["best_mIoU"] and again["best_epoch"] == ref["best_epoch"]
    assert torch.equal(
        torch.load(RunFolder(ref_dir).confusion_matrix), torch.load(RunFolder(tmp_path / "b").confusion_matrix)
    )


def test_resume_after_sigkill_matches_uninterrupted_run(reference_run, tmp_path):
    ref_dir, ref = reference_run
    run = RunFolder(tmp_path / "killed")
    killed = run_entry("main.py", *TINY2, *KILL, f"hydra.run.dir={run.root}", env={"SEGBENCH_TEST_KILL": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _ckpt(run.root)["global_step"] == 2  # killed in epoch 1: only the end-of-epoch-0 checkpoint exists

    assert call_hydra_cli("main", [f"+continue_from={run.root}"]) == 0  # resumed in-process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed"]  # same folder, no new one
    assert "Resuming from" in run.log_file.read_text()
    a, b = _ckpt(ref_dir), _ckpt(run.root)
    assert b["global_step"] == a["global_step"] == 4 and b["epoch"] == a["epoch"] == 1
    _assert_same_state(a["state_dict"], b["state_dict"])
    assert b["segbench_best"]["best_miou"] == ref["best_mIoU"]
    assert torch.equal(torch.load(RunFolder(ref_dir).confusion_matrix), torch.load(run.confusion_matrix))
    assert run.missing() == []


def test_continue_from_argv_merges_original_overrides(tmp_path):
    run = RunFolder(tmp_path / "r")
    (run.hydra_dir).mkdir(parents=True)
    (run.hydra_dir / "overrides.yaml").write_text("- epochs=2\n- lr=0.1\n- +finetune_from=/x.ckpt\n")
    argv = continue_from_argv([f"+continue_from={run.root}", "epochs=5"])
    assert argv[:3] == ["lr=0.1", "epochs=5", f"+continue_from='{run.root}'"]
    # Hydra writes into a staging folder: the run folder is written only once the checkpoint fits (training/resume.py)
    staging = Path(argv[3].split("=", 1)[1].strip("'"))
    assert argv[3].startswith("hydra.run.dir=") and staging.is_dir() and staging != run.root and len(argv) == 4
    staging.rmdir()
    assert continue_from_argv(["epochs=5"]) == ["epochs=5"]
    with pytest.raises(RunFolderError, match="overrides.yaml"):
        continue_from_argv([f"+continue_from={tmp_path / 'nope'}"])
    with pytest.raises(ValueError, match="multirun"):
        continue_from_argv(["-m", f"+continue_from={run.root}"])


def test_resume_checkpoint_rules(tmp_path):
    """A requeued job (same folder, last.ckpt present) resumes; +continue_from resumes the folder's last.ckpt
    (train() takes the run folder from continue_from; Hydra's own folder is only a staging area)."""
    from training.resume import resume_checkpoint

    run = RunFolder(tmp_path / "run").create()
    cfg = compose_cfg([])
    assert resume_checkpoint(cfg, run) is None
    run.last_ckpt.write_bytes(b"")
    assert resume_checkpoint(cfg, run) == run.last_ckpt
    assert resume_checkpoint(compose_cfg([f"+continue_from={run.root}"]), run) == run.last_ckpt
    run.last_ckpt.unlink()
    with pytest.raises(RunFolderError, match="no checkpoint"):
        resume_checkpoint(compose_cfg([f"+continue_from={run.root}"]), run)
