"""Measure, aggregate and plot: fps, latency, params, FLOPs, memory and mIoU of segmentation models.

    python benchmark.py model=smp dataset=camvid resolution=512x512 [precision=bf16] [backend=channels_last]
    python benchmark.py -m model.arch=Unet,FPN backend=eager,channels_last        # Hydra multirun
    python benchmark.py aggregate [root=logs] [tables=tables] [import_mmseg=true]
    python benchmark.py plot dataset=cityscapes resolution=2048x1024 [interesting=pareto|reproduced|A,B]
    python benchmark.py export checkpoint=<run folder> [formats=onnx,openvino,openvino_int8]   # ONNX + OpenVINO IR
    python benchmark.py compare [root=LOGDIR] [tables=DIR] [by=[KEY,...]] [metric=NAME] [select=RULE]
                                [baseline=CONFIG] [record=results/<name>.yaml]
    python benchmark.py render [check=true]       # README/docs result tables from results/*.yaml
    python benchmark.py peak [precisions=[fp32,bf16,int8]] [threads=N]   # matmul peaks for `% of peak` columns

Thin entry point: ``aggregate``, ``plot``, ``compare``, ``peak``, ``render`` and ``export`` are dispatched before
Hydra sees ``sys.argv``; the work is in ``benchmarking/`` (``render``: ``report/``). Every subcommand takes
``key=value`` arguments and ``--help`` (``aggregate``, ``compare`` and ``render`` through
:class:`core.command_line.KeyValueParser`, which still accepts their older ``--root DIR``-style flags with one
deprecation line). The exit status is 1 when any
measurement failed (a sweep writes every record first);
errors are one line on stderr (unknown override keys included, see :mod:`core.errors`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import core.hydra  # noqa: F401  (registers the config resolvers)
from core.errors import HydraErrors, task_started, unquoted_space
from core.run_folder import quote_path_overrides

REPO = Path(__file__).resolve().parent  # absolute config path: also when imported (tests)

log = logging.getLogger("segbench.benchmark")

#: (record summary, record path) of every failed measurement of this process (a sweep runs them in-process)
FAILED: list[tuple[str, str]] = []


@hydra.main(config_path=str(REPO / "config"), config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Measure one configuration; the record goes to the run's ``benchmark/`` folder. Returns fps (or None)."""
    task_started()
    from benchmarking.console import summary
    from benchmarking.runner import run_benchmark  # torch & co. only for measuring, not aggregate/plot

    hc = HydraConfig.get()
    rec, path = run_benchmark(
        cfg,
        hc.runtime.output_dir,
        model_choice=hc.runtime.choices.get("model", ""),
        overrides=" ".join(hc.overrides.task),
    )
    log.info(summary(rec))
    log.info(f"record: {path}")
    if rec.status != "ok":
        FAILED.append((f"{rec.name}: {rec.error}", str(path)))
    return rec.fps


def cli(argv: list[str]) -> None:
    """``python benchmark.py ARGV``; exits with status 1 (one line on stderr) when any measurement failed."""
    if argv and argv[0] in ("plot", "peak", "export") and {"-h", "--help"} & set(argv[1:]):
        from benchmarking.cli import subcommand_help

        print(subcommand_help(argv[0]))
        sys.exit(0)
    if argv and argv[0] == "export":
        from benchmarking.export import run_export

        sys.exit(run_export(argv[1:]))
    if argv and argv[0] == "render":
        from report.render import main as render

        sys.exit(render(argv[1:]))
    if argv and argv[0] in ("aggregate", "plot", "compare", "peak"):
        from benchmarking.cli import run_subcommand

        sys.exit(run_subcommand(argv[0], argv[1:]))
    FAILED.clear()
    split = unquoted_space(argv)  # key=/tmp/my data: the shell split the value
    if split:
        sys.exit(f"benchmark.py: error: {split}")
    sys.argv[1:] = quote_path_overrides(argv, ("checkpoint", "photos"))  # older run folders hold =,[]
    import models.pretrained  # noqa: F401  (registers ${pretrained_norm:...}; measuring only, not compare/render)

    with HydraErrors("benchmark.py"):
        main()
    if FAILED:
        first, path = FAILED[0]
        sys.exit(f"benchmark.py: error: {len(FAILED)} measurement(s) failed; first: {first} (record: {path})")


if __name__ == "__main__":
    cli(sys.argv[1:])
