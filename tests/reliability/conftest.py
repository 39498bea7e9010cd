"""Shared pieces of the reliability tests: one tiny finished run, in-process entry points, folder hashes.

The entry points run in-process (``main.cli``, ``benchmark.cli``, ``validation.main``/``predict.main`` through
:func:`core.errors.run_entry`): the same code path as ``python <entry>.py`` without paying the interpreter and
torch start-up for each of the many bad inputs. A few tests run the real subprocess to pin the exit status.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY_RUN, call_hydra_cli

#: main.py overrides of the shared run: 1 epoch x 2 steps of 64x96 crops on the embedded CamVid, CSV + TensorBoard
RUN_ARGS = [o for o in TINY_RUN if not o.startswith("num_vis=")] + [
    "num_vis=0",
    "logger=[csv,tensorboard]",
    "trainer.log_every_n_steps=1",
]


def tree_hash(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (folders as ``"<dir>"``): any change shows."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished main.py run (poly LR, 1 epoch of 2 steps, CSV + TensorBoard), made once per session."""
    logdir = tmp_path_factory.mktemp("logs")
    code = call_hydra_cli("main", [*RUN_ARGS, f"LOGDIR={logdir}"])
    assert code == 0
    runs = [p for p in logdir.glob("camvid/smp/*/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of the finished run (tests that continue or damage a run)."""
    dst = tmp_path / "logs" / "camvid" / "smp" / finished_run.parent.name / finished_run.name
    shutil.copytree(finished_run, dst)
    return dst
