"""Experiment trackers and the Optuna search, read back through the trackers' own APIs (no network).

* one tiny training with ``logger=[tensorboard,mlflow,wandb]``: MLflow through ``MlflowClient`` (metrics, params =
  resolved config, run folder tag, best checkpoint artifact), W&B through its offline run file, both against the
  TensorBoard events of the same run;
* ``hparams_search=lr_wd_crop_loss`` with 2 trials: 2 run folders, the study in ``LOGDIR/optuna.db`` with the best
  params, and a second invocation adding a trial to the same study (resume) at a new point; Ctrl+C and orphaned
  trials end FAIL;
* two MLflow loggers opening one fresh SQLite store at the same time.
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from core.run_folder import RunFolder
from metrics import metrics_from_confusion
from tests.conftest import TINY_RUN, call_hydra_cli, compose_cfg
from training.train import train

mlflow = pytest.importorskip("mlflow", reason="logger=mlflow needs: pip install -r requirements-tracking.txt")
pytest.importorskip("wandb", reason="logger=wandb needs: pip install -r requirements-tracking.txt")
optuna = pytest.importorskip("optuna", reason="hparams_search needs: pip install -r requirements-tracking.txt")

from tests.training.wandb_records import item_key, read_records  # noqa: E402  (needs wandb)

TWO_EPOCHS = [o for o in TINY_RUN if not o.startswith(("epochs=", "num_vis="))] + ["epochs=2", "num_vis=0"]


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("logs")
    before = os.environ.pop("WANDB_MODE", None)
    try:
        cfg = compose_cfg([*TWO_EPOCHS, f"LOGDIR={logdir}", "logger=[tensorboard,mlflow,wandb]"])
        result = train(cfg, logdir / "run")
        mode = os.environ.get("WANDB_MODE")
    finally:
        os.environ.pop("WANDB_MODE", None)
        if before is not None:
            os.environ["WANDB_MODE"] = before
    return logdir, Path(result["run_dir"]), result, mode


def _tensorboard_scalars(run_dir: Path, tag: str) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]


def _mlflow_run(logdir: Path):
    client = mlflow.tracking.MlflowClient(f"sqlite:///{logdir}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("segbench").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_mlflow_run_read_back_through_mlflowclient(tracked_run, tmp_path):
    logdir, run_dir, result, _ = tracked_run
    client, run = _mlflow_run(logdir)
    assert run.info.status == "FINISHED"
    miou = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "val/mIoU"), key=lambda m: m.step)]
    tb = _tensorboard_scalars(run_dir, "val/mIoU")
    assert len(miou) == 2 and miou == pytest.approx(tb, abs=1e-7)  # same series as TensorBoard
    assert max(miou) == pytest.approx(result["best_mIoU"], abs=1e-6)
    # params: the resolved config flattened, and the run folder
    p = run.data.params
    assert p["lr"] == "0.01" and p["dataset.crop_size"] == "[64, 96]" and p["model.arch"] == "Unet"
    assert p["ema.decay"] == "None" and p["run_dir"] == str(run_dir.resolve())
    assert run.data.tags["segbench.run_dir"] == str(run_dir.resolve())
    assert run.info.run_name == f"{logdir.name}/run"
    # the best checkpoint as an artifact, byte-identical to checkpoints/best.ckpt
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == ["checkpoints/best.ckpt"]
    got = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    assert filecmp.cmp(got, RunFolder(run_dir).best_ckpt, shallow=False)


def test_wandb_offline_run_files(tracked_run):
    logdir, run_dir, result, mode = tracked_run
    assert mode == "offline"  # WANDB_MODE unset -> offline
    files = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    records = read_records(files[0])
    config = {item_key(i): i.value_json for r in records if r.HasField("config") for i in r.config.update}
    assert config["lr"] == "0.01" and config["model.arch"] == '"Unet"'
    assert config["run_dir"] == f'"{run_dir.resolve()}"'
    history = [
        {item_key(i): i.value_json for i in r.history.item} for r in records if r.WhichOneof("record_type") == "history"
    ]
    miou = [float(h["val/mIoU"]) for h in history if "val/mIoU" in h]
    assert miou == pytest.approx(_tensorboard_scalars(run_dir, "val/mIoU"), abs=1e-7)
    assert max(miou) == pytest.approx(result["best_mIoU"], abs=1e-6)
    import wandb

    assert wandb.run is None and any(r.WhichOneof("record_type") == "exit" for r in records)  # run finished
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run_record.project == "segbench" and run_record.display_name == f"{logdir.name}/run"


def test_missing_extra_names_the_requirements_file(monkeypatch, tmp_path):
    import sys

    from training import tracking

    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    need = "logger=mlflow needs the package 'mlflow', an optional extra: pip install -r requirements-tracking.txt"
    with pytest.raises(ModuleNotFoundError, match=need):
        tracking.MLFlowLogger(save_dir=str(tmp_path))


def _open_store_together(logdir: str, name: str, barrier, results) -> None:
    """Child process: create a segbench MLflow logger for run ``name`` once every child is ready, log, finish."""
    try:
        from training.tracking import MLFlowLogger

        run_dir = Path(logdir) / name
        run_dir.mkdir()
        barrier.wait(timeout=60)
        cfg = compose_cfg([f"LOGDIR={logdir}", "logger=mlflow"]).logger.mlflow  # the store URI of the config
        logger = MLFlowLogger(
            save_dir=str(run_dir),
            tracking_uri=cfg.tracking_uri,
            artifact_location=cfg.artifact_location,
            log_best_checkpoint=False,
        )
        logger.log_metrics({"val/mIoU": 0.5}, step=0)
        logger.finalize("success")
        results.put((name, "ok"))
    except BaseException as e:  # reported to the parent, which names it
        results.put((name, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))


def test_two_runs_create_one_mlflow_store_together(tmp_path):
    """Two runs started at once into a fresh LOGDIR both land in ``mlflow.db`` (MLflow creates the tables of a new
    SQLite store on first use; unserialised, one process fails with ``duplicate column name``)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # the store and the logger exactly as in training, without start-up
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_open_store_together, args=(str(tmp_path), n, barrier, results)) for n in "ab"]
    for p in children:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in children)
    for p in children:
        p.join(60)
    assert outcome == {"a": "ok", "b": "ok"}
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("segbench").experiment_id])
    assert sorted(Path(r.data.tags["segbench.run_dir"]).name for r in runs) == ["a", "b"]
    assert {r.info.status for r in runs} == {"FINISHED"}


def _cli(values) -> str:
    """A list as the search space writes it on the command line: ``[352,480]``, ``[CE]``."""
    return "[" + ",".join(str(v) for v in values) + "]"


def _trial_folders(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if (p / "hparams.yaml").is_file()), key=lambda p: int(p.name))


def test_optuna_search_two_trials_then_resume(tmp_path):
    args = _search_args(tmp_path)
    assert call_hydra_cli("main", [*args, "hydra.sweeper.n_trials=2"]) == 0  # in-process main.py
    study_root = tmp_path / "hparams_search" / "camvid_smp_lr_wd_crop_loss"
    (sweep_dir,) = list(study_root.iterdir())
    folders = _trial_folders(sweep_dir)
    assert [p.name for p in folders] == ["0", "1"]

    study = optuna.load_study(study_name="camvid_smp_lr_wd_crop_loss", storage=f"sqlite:///{tmp_path}/optuna.db")
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial, folder in zip(trials, folders):
        run = RunFolder(folder)
        assert run.missing() == []  # an ordinary run folder
        cfg = run.load_config()
        assert cfg.lr == pytest.approx(trial.params["lr"]) and cfg.wd == pytest.approx(trial.params["wd"])
        assert _cli(cfg.dataset.crop_size) == trial.params["dataset.crop_size"]  # e.g. "[64,96]"
        assert _cli(cfg.lossfunction) == trial.params["lossfunction"]  # e.g. "[CE]"
        assert 1e-3 <= cfg.lr <= 0.1 and 1e-5 <= cfg.wd <= 1e-3
        # objective = best val mIoU of the run = mIoU of its best-epoch confusion matrix
        assert trial.value == pytest.approx(metrics_from_confusion(torch.load(run.confusion_matrix))["mIoU"], abs=1e-6)
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == pytest.approx(max(t.value for t in trials))
    assert OmegaConf.to_container(results.best_params) == study.best_params

    assert call_hydra_cli("main", [*args, "hydra.sweeper.n_trials=1"]) == 0
    study = optuna.load_study(study_name="camvid_smp_lr_wd_crop_loss", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert len(list(study_root.iterdir())) == 2
    # the resumed sampler (seed + 2 trials) proposes a new point, not the first invocation's first one again
    resumed = sorted(study.trials, key=lambda t: t.number)[2]
    assert resumed.params["lr"] not in {t.params["lr"] for t in trials}
    assert resumed.params["wd"] not in {t.params["wd"] for t in trials}


def _search_args(tmp_path) -> list[str]:
    """The shipped search space with tiny crops (a search-space file of the same group, via hydra.searchpath)."""
    extra = tmp_path / "extra_configs" / "hparams_search"
    extra.mkdir(parents=True, exist_ok=True)
    (extra / "tiny_crops.yaml").write_text(
        "# @package _global_\ndefaults:\n  - lr_wd_crop_loss\n"
        "hydra:\n  sweeper:\n    params:\n      dataset.crop_size: choice([64,96], [64,64])\n"
    )
    tiny = [o for o in TINY_RUN if not o.startswith(("dataset.crop_size", "num_vis="))] + ["num_vis=0"]
    return [
        "hparams_search=tiny_crops",
        f"hydra.searchpath=[file://{tmp_path / 'extra_configs'}]",
        f"LOGDIR={tmp_path}",
        *tiny,
    ]


def test_optuna_interrupted_and_orphaned_trials_end_failed(tmp_path):
    """Ctrl+C during a trial tells it FAIL; a RUNNING trial of a sweep process that is gone is failed on resume."""
    import signal
    import subprocess

    from hydra_plugins.segbench_sweeper.optuna_sweeper import OWNER_ATTR, owner

    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="camvid_smp_lr_wd_crop_loss", storage=storage, direction="maximize")
    orphan = study.ask()  # asked by a sweep process that died (its pid no longer exists)
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan.set_system_attr(OWNER_ATTR, {**owner(), "pid": gone.pid, "pid_start": 1})
    interrupt = ["+callbacks.interrupt._target_=tests.training.killer.InterruptAtStep"]
    try:
        assert call_hydra_cli("main", [*_search_args(tmp_path), *interrupt, "hydra.sweeper.n_trials=1"]) == 1
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT after a Ctrl+C
    study = optuna.load_study(study_name="camvid_smp_lr_wd_crop_loss", storage=storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
    assert trials[1].params and trials[1].system_attrs[OWNER_ATTR]["pid"] == os.getpid()  # the interrupted one


def test_resumed_sampler_seed_counts_the_trials_so_far():
    from hydra_plugins.segbench_sweeper.optuna_sweeper import resumed_sampler

    cfg = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "seed": 1234, "n_startup_trials": 10})
    first = optuna.samplers.TPESampler(seed=1234)
    assert resumed_sampler(cfg, first, 0) is first  # a fresh study draws as before: reproducible

    def draw(sampler) -> float:
        return optuna.create_study(sampler=sampler).ask().suggest_float("x", 0.0, 1.0)

    resumed = resumed_sampler(cfg, first, 3)
    assert draw(resumed) == draw(optuna.samplers.TPESampler(seed=1237)) != draw(optuna.samplers.TPESampler(seed=1234))
    grid = OmegaConf.create({"_target_": "optuna.samplers.GridSampler", "_partial_": True})
    assert resumed_sampler(grid, "partial", 3) == "partial"
