"""Measure, aggregate and plot: fps, latency, params, FLOPs, memory and mIoU of segmentation models.

    python benchmark.py model=smp dataset=camvid resolution=512x512 [precision=bf16] [backend=channels_last]
    python benchmark.py -m model.arch=Unet,FPN backend=eager,channels_last        # Hydra multirun
    python benchmark.py aggregate [--root logs/] [--tables tables/] [--import-mmseg]
    python benchmark.py plot dataset=cityscapes resolution=2048x1024 [interesting=pareto|reproduced|A,B]
    python benchmark.py export checkpoint=<run folder> [formats=onnx,openvino,openvino_int8]   # ONNX + OpenVINO IR
    python benchmark.py compare [--root LOGDIR] [--tables DIR] [--by KEYS] [--metric NAME] [--baseline CONFIG]

Thin entry point: ``aggregate``, ``plot``, ``compare`` and ``export`` are dispatched before Hydra sees ``sys.argv``; the work is in
``benchmarking/``.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import utils.hydra  # noqa: F401  (registers the config resolvers)

log = logging.getLogger("segbench.benchmark")


@hydra.main(config_path="config", config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Measure one configuration; the record goes to the run's ``benchmark/`` folder. Returns fps (or None)."""
    from benchmarking.runner import run_benchmark, summary  # torch & co. only for measuring, not aggregate/plot

    hc = HydraConfig.get()
    rec, path = run_benchmark(
        cfg,
        hc.runtime.output_dir,
        model_choice=hc.runtime.choices.get("model", ""),
        overrides=" ".join(hc.overrides.task),
    )
    log.info(summary(rec))
    log.info(f"record: {path}")
    return rec.fps


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        from benchmarking.export import run_export

        sys.exit(run_export(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] in ("aggregate", "plot", "compare"):
        from benchmarking.cli import run_subcommand

        sys.exit(run_subcommand(sys.argv[1], sys.argv[2:]))
    main()
