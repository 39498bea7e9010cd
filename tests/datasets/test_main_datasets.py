"""`python main.py dataset=<each> environment.data_root=<root>` trains (tiny run) on the real samples.

One Hydra multirun (`-m dataset=a,b,...`, sequential jobs in one process) over a temporary data root that
links the real Cityscapes and ADE20K samples into their official layouts, the generated VOC Context fixture
(prepared with `python -m datasets.prepare voc_context`), and a generated `folder` dataset. One job has
`dataset.skip_corrupt=true` with a truncated training image: the skipped-file count reaches the logger.
"""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.run_folder import RunFolder
from tests.conftest import REPO, TINY_RUN, call_hydra_cli
from tests.datasets.trees import TREE_DATASETS, ade_tree, cityscapes_tree, folder_tree, voc_context_tree


@pytest.fixture(scope="module")
def data_root(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    cityscapes_tree(shared_data, root)
    ade_tree(shared_data, root)
    proc = subprocess.run(
        [sys.executable, "-m", "datasets.prepare", "voc_context", str(voc_context_tree(root))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )  # the documented command
    assert proc.returncode == 0 and "train: 2 images, val: 2 images" in proc.stdout, proc.stderr[-2000:]
    folder_tree(root, n=2, num_classes=2)  # the one train batch (2 images) always contains img0
    img = root / "folder" / "images" / "train" / "img0.png"
    img.write_bytes(img.read_bytes()[:200])  # truncated: skipped and counted with dataset.skip_corrupt=true
    return root


def test_fast_run_on_every_dataset(data_root, tmp_path, capsys):
    # TINY_RUN with 1 train + 1 val batch of 1 image (ADE20K/VOC images differ in size: val_batch_size=1)
    overrides = [o for o in TINY_RUN if not o.startswith(("val_batch_size", "trainer.limit"))]
    argv = ["-m", f"dataset={','.join(TREE_DATASETS)}", f"environment.data_root={data_root}", *overrides]
    argv += ["val_batch_size=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "logger=csv"]
    code = call_hydra_cli("main", [*argv, f"LOGDIR={tmp_path}", "dataset.skip_corrupt=true"])  # in-process main.py
    out = "".join(capsys.readouterr())
    assert code == 0, out[-5000:]
    runs = [Path(p) for p in dict.fromkeys(re.findall(r"Run folder: (\S+)", out))]
    assert len(runs) == len(TREE_DATASETS), out[-3000:]
    for name, run_dir in zip(TREE_DATASETS, runs):
        run = RunFolder(run_dir)
        cfg = run.load_config()
        assert cfg.dataset.name == name
        assert run.missing() == [], (name, run.missing())
        metrics = pd.read_csv(next(run_dir.rglob("metrics.csv")))
        assert metrics["val/mIoU"].notna().any(), name
        if name == "folder":
            assert metrics["data/skipped_corrupt"].dropna().sum() >= 1  # img0 skipped in the epoch
            assert "skipping corrupt file" in out and "img0.png" in out
        else:
            assert "data/skipped_corrupt" not in metrics or metrics["data/skipped_corrupt"].dropna().sum() == 0
