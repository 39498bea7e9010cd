"""Train a segmentation model: ``python main.py [model=...] [dataset=...] [key=value ...]``.

Thin Hydra entry point; the work is in :func:`training.train.train`. See README.md for examples.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import utils.hydra  # noqa: F401  (registers the config resolvers)
from training.resume import continue_from_argv
from training.train import train


@hydra.main(config_path="config", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train into the Hydra run folder; returns the best val mIoU (for Hydra sweepers)."""
    return train(cfg, HydraConfig.get().runtime.output_dir)["best_mIoU"]


if __name__ == "__main__":
    sys.argv[1:] = continue_from_argv(sys.argv[1:])  # +continue_from=<run folder>: resume into that folder
    main()
