"""submitit_slurm against a REAL local SLURM (scripts/slurm_local.sh up): a 2-run multirun makes two complete run
folders; a killed job and a job over the wait limit end the wait with a clear error instead of hanging."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from core.run_folder import RunFolder
from hydra_plugins.segbench_launcher.launchers import _bounded_job_waits
from tests.conftest import TINY_RUN, compose_cfg, run_entry


@pytest.fixture(scope="module")
def slurm():
    """Skips (with the reason) unless a SLURM controller answers ``sinfo``."""
    if shutil.which("sinfo") is None:
        pytest.skip("SLURM not installed (no sinfo): run `scripts/slurm_local.sh up` (Debian, root) to enable")
    out = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mix", "alloc")):
        pytest.skip(
            f"no SLURM controller/idle node (sinfo: {(out.stdout + out.stderr).strip()[:200]}): "
            f"run `scripts/slurm_local.sh up`"
        )
    return out.stdout.split()[0].rstrip("*")


def test_launcher_presets_compose():
    for name, tasks, nodes in (
        ("submitit_slurm", 1, 1),
        ("slurm_1gpu", 1, 1),
        ("slurm_4gpu", 4, 1),
        ("slurm_8gpu_2nodes", 4, 2),
        ("slurm_local_cpu", 1, 1),
    ):
        launcher = compose_cfg([f"hydra/launcher={name}"], return_hydra_config=True).hydra.launcher
        assert launcher._target_ == "hydra_plugins.segbench_launcher.launchers.SlurmLauncher"
        assert (launcher.tasks_per_node, launcher.nodes) == (tasks, nodes)
        if name != "slurm_local_cpu":
            assert launcher.gpus_per_node == tasks  # one task per GPU
    local = compose_cfg(["hydra/launcher=submitit_local"], return_hydra_config=True).hydra.launcher
    assert local._target_.endswith("LocalLauncher")


@pytest.mark.slow
def test_multirun_of_two_trainings_through_slurm(slurm, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_entry(
        "main.py",
        "-m",
        "hydra/launcher=slurm_local_cpu",
        f"hydra.launcher.partition={slurm}",
        f"hydra.sweep.dir={sweep}",
        "launcher_wait.timeout_min=12",
        *TINY_RUN,
        "num_vis=0",
        "model.arch=Unet,FPN",
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for job in ("0", "1"):
        assert RunFolder(sweep / job).missing() == []
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == ["0", "1", "multirun.yaml"]


def _executor(tmp_path, partition):
    import submitit

    ex = submitit.AutoExecutor(folder=str(tmp_path / "%j"), cluster="slurm")
    ex.update_parameters(slurm_partition=partition, timeout_min=5, cpus_per_task=1)
    return ex


def test_killed_job_is_reported_not_waited_for(slurm, tmp_path):
    from submitit.core.utils import UncompletedJobError

    job = _executor(tmp_path, slurm).submit(os.kill, 0, signal.SIGKILL)  # kills its own process group
    start = time.monotonic()
    with (
        _bounded_job_waits(timeout_s=300, gone_grace_s=3),
        pytest.raises(UncompletedJobError, match="left the SLURM queue"),
    ):
        job.result()
    assert time.monotonic() - start < 240


def test_wait_timeout_cancels_the_job(slurm, tmp_path):
    from submitit.core.utils import UncompletedJobError

    job = _executor(tmp_path, slurm).submit(time.sleep, 120)
    with _bounded_job_waits(timeout_s=3, gone_grace_s=3), pytest.raises(UncompletedJobError, match="cancelled"):
        job.result()
    for _ in range(50):
        state = subprocess.run(["squeue", "-h", "-j", job.job_id, "-o", "%T"], capture_output=True, text=True).stdout
        if "RUNNING" not in state and "PENDING" not in state:
            break
        time.sleep(0.2)
    assert "RUNNING" not in state and "PENDING" not in state
