"""Every option of every config group composes and resolves (lightning-hydra-template style)."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONFIG_DIR, compose_cfg

# Groups whose options need optional extras or other top-level configs are composed in their own tests.
GROUPS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name not in ("hydra",))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_every_option_composes(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["lossfunction"] and len(container["lossfunction"]) == len(container["lossweight"])
    if group == "experiment":
        assert container["experiment"] == option, "a recipe names itself in `experiment` (run folder name)"


def test_defaults_are_the_documented_ones():
    cfg = compose_cfg([])
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.9
    assert cfg.optimizer.weight_decay == pytest.approx(5e-4)
    assert cfg.lr_scheduler.scheduler._target_.endswith("PolynomialLR") and cfg.lr_scheduler.scheduler.power == 0.9
    assert cfg.lr_scheduler.interval == "step"
    assert cfg.trainer.accelerator == "cpu"
    assert "tensorboard" in cfg.logger
    assert cfg.dataset.name == "camvid" and cfg.dataset.ignore_index == 255
    for key in [
        "epochs",
        "batch_size",
        "val_batch_size",
        "num_workers",
        "lr",
        "wd",
        "momentum",
        "lossfunction",
        "lossweight",
        "seed",
        "LOGDIR",
        "experiment",
    ]:
        assert key in cfg, key


def test_command_line_overrides_reach_the_model():
    cfg = compose_cfg(["model=smp", "model.arch=FPN", "model.encoder=resnet34", "lossfunction=[wCE]", "epochs=3"])
    assert (cfg.model.arch, cfg.model.encoder, list(cfg.lossfunction), cfg.trainer.max_epochs) == (
        "FPN",
        "resnet34",
        ["wCE"],
        3,
    )


def test_paths_come_from_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("SEGBENCH_LOGDIR", str(tmp_path / "l"))
    cfg = compose_cfg([])
    assert cfg.dataset.root == str(tmp_path / "d" / "camvid")
    assert str(tmp_path / "l") == cfg.LOGDIR


def test_default_paths_are_repo_relative(monkeypatch):
    for var in ("SEGBENCH_DATA", "SEGBENCH_LOGDIR", "SEGBENCH_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    cfg = compose_cfg([])
    repo = Path(__file__).resolve().parents[1]
    assert Path(cfg.environment.data_root) == repo / "data"
    assert Path(cfg.LOGDIR) == repo / "logs"


def test_no_absolute_paths_in_configs():
    for path in CONFIG_DIR.rglob("*.yaml"):
        text = path.read_text()
        for line in text.splitlines():
            value = line.split(":", 1)[-1].strip()
            assert not value.startswith(("/home", "/work", "/root", "/data", "/mnt", "/scratch")), f"{path}: {line}"
