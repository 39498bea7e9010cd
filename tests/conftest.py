"""Shared test helpers: config composition, the real-data folder, tiny run overrides."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import core.hydra  # noqa: F401  (registers resolvers)
import models.pretrained  # noqa: F401  (registers ${pretrained_norm:...})

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
SHARED_DATA = Path(os.environ.get("SEGBENCH_SHARED_DATA", REPO.parent / "shared" / "data")).resolve()

# Overrides that make a training run take seconds on CPU (2 train + 2 val batches, small crops).
TINY_RUN = [
    "epochs=1",
    "batch_size=2",
    "val_batch_size=2",
    "num_workers=0",
    "dataset.crop_size=[64,96]",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "num_vis=2",
    "callbacks.progress_bar.refresh_rate=0",
]


def compose_cfg(overrides=(), config_name: str = "train", return_hydra_config: bool = False):
    """Compose ``config/<config_name>.yaml`` with ``overrides`` as the command line would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def run_entry(script: str, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``python <script> args...`` from the repo root; returns the completed process (text output).

    The child runs with one OpenMP thread (``OMP_NUM_THREADS=1``) unless ``env`` says otherwise: tests use tiny
    tensors, for which thread hand-off dominates (and multiplies on a busy 2-core machine)."""
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / script), *args], cwd=REPO, env=e, capture_output=True, text=True, timeout=timeout
    )


def _drop_file_handlers() -> None:
    """Hydra leaves its handlers on the root logger (``main.log``, and a console handler bound to this test's
    captured stdout): close them so later tests never write there."""
    root = logging.getLogger()
    for h in list(root.handlers):
        h.close()
        root.removeHandler(h)


def call_hydra_cli(module_name: str, argv: list[str]) -> int:
    """Run ``<module>.cli(argv)`` (main.py / benchmark.py) in-process; returns the exit status it would have."""
    module = __import__(module_name)
    GlobalHydra.instance().clear()
    saved = list(sys.argv)
    sys.argv = [f"{module_name}.py"]
    try:
        module.cli(list(argv))
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):  # sys.exit("message") prints the message
            print(e.code, file=sys.stderr)
            code = 1
        else:
            code = int(e.code or 0)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
        _drop_file_handlers()
    return code


def error_line(stderr: str, entry: str) -> str:
    """The single ``<entry>: error: ...`` line of ``stderr`` (asserts there is exactly one, and it is one line)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith(f"{entry}: error:")]
    assert len(lines) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


@pytest.fixture(autouse=True, scope="session")
def _one_intraop_thread():
    """The whole session computes with one intra-op thread (tiny tensors: OpenMP hand-off costs dominate), as do
    the entry-point subprocesses of :func:`run_entry`: in-process and subprocess runs are then bit-comparable
    (the thread count changes float reduction order). Session scope: set before any module-scoped fixture runs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _closed(stream) -> bool:
    return bool(getattr(stream, "closed", False))


@pytest.fixture(autouse=True)
def _no_handler_on_a_closed_stream():
    """In-process entry points (Hydra, and libraries that add logging handlers at import: NNCF, OpenVINO) bind
    stream handlers to the stream that was ``sys.stdout``/``sys.stderr`` during that test, which pytest closes
    afterwards. After each test such handlers are removed and a closed ``sys.stdout``/``sys.stderr`` is put back,
    so no later test (or pytest's own report) writes to a closed file."""
    yield
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for h in list(lg.handlers):
            if isinstance(h, logging.StreamHandler) and _closed(getattr(h, "stream", None)):
                lg.removeHandler(h)
    if _closed(sys.stderr):
        sys.stderr = sys.__stderr__
    if _closed(sys.stdout):
        sys.stdout = sys.__stdout__


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``SEGBENCH_SHARED_DATA``); skips with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data folder {SHARED_DATA} is missing (set SEGBENCH_SHARED_DATA to it)")
    return SHARED_DATA


#: test files whose tests run one after another in one pytest-xdist worker (``--dist loadgroup``), by group name:
#: the export/backend tests import ONNX Runtime, OpenVINO and NNCF in-process (see below); the SLURM tests share the
#: one local node, whose two CPUs a concurrent job would hold; the others share a module-scoped training run, which
#: would otherwise be trained once in every worker.
SERIAL_GROUPS = {
    "tests/benchmarking/test_backends_export.py": "deploy",
    "tests/benchmarking/test_openvino_runtime.py": "deploy",
    "tests/benchmarking/test_accuracy_control.py": "deploy",
    "tests/training/test_slurm.py": "slurm",
    "tests/training/test_main.py": "main_run",
    "tests/training/test_tracking.py": "tracking_run",
    "tests/training/test_resume.py": "resume_run",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the groups into node ids
def pytest_collection_modifyitems(config, items):
    """Run the export/backend tests (ONNX Runtime, OpenVINO, NNCF in-process) after every other test, all in one
    worker: after them, an in-process Hydra run (main.py's ``cli``) in the same interpreter loses its stderr."""
    for it in items:
        group = SERIAL_GROUPS.get(it.nodeid.split("::")[0])
        if group:
            it.add_marker(pytest.mark.xdist_group(group))
    last = [it for it in items if SERIAL_GROUPS.get(it.nodeid.split("::")[0]) == "deploy"]
    items[:] = [it for it in items if it not in last] + last


@pytest.fixture(autouse=True)
def _signal_stack_kept():
    """Tests that call OpenVINO directly (not through :mod:`benchmarking.backends`) get the same guard as the
    product: the thread's alternate signal stack is put back after the test
    (:func:`benchmarking.backends.signal_stack.kept_signal_stack`), so no later test's signal lands on unmapped
    memory."""
    from benchmarking.backends.signal_stack import kept_signal_stack

    with kept_signal_stack(collect=False):
        yield
