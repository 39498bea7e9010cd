"""Train a segmentation model: ``python main.py [model=...] [dataset=...] [key=value ...]``.

Thin Hydra entry point; the work is in :func:`training.train.train`. See README.md for examples.

Errors end in one line on stderr naming the culprit (traceback in the run's ``main.log``, see
:mod:`core.errors`); a run that fails before it has written any result leaves no run folder behind (its log is
kept under ``<tmp>/segbench-logs/``); a failed ``+continue_from`` leaves the run folder as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import models.pretrained  # noqa: F401  (registers ${pretrained_norm:...})
from core.errors import (
    HydraErrors,
    default_log_file,
    file_handler_path,
    one_line,
    report,
    task_started,
    unquoted_space,
    write_traceback,
)
from core.hydra import claimed_here  # also registers the config resolvers
from core.run_folder import RunFolder, quote_path_overrides
from training.resume import continue_from_argv

REPO = Path(__file__).resolve().parent  # absolute config path: also when imported (tests)


@hydra.main(config_path=str(REPO / "config"), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Train into the Hydra run folder; returns the best val mIoU (for Hydra sweepers)."""
    task_started()
    out = HydraConfig.get().runtime.output_dir
    try:
        from training.train import train

        return train(cfg, out)["best_mIoU"]
    except Exception as e:
        log_file = file_handler_path() or default_log_file("main.py")
        fresh = RunFolder(out)
        if claimed_here(out) and fresh.root.is_dir() and not fresh.has_results():
            write_traceback(e, log_file)
            kept = default_log_file("main.py")
            fresh.discard(keep_log=kept, prune_up_to=cfg.get("LOGDIR"))  # nothing trained: no run folder left
            log_file = kept
            print(f"main.py: error: {one_line(e)} (traceback: {kept})", file=sys.stderr, flush=True)
        else:
            report("main.py", e, log_file)
        sys.exit(1)


def cli(argv: list[str]) -> None:
    """``python main.py ARGV``: the command line rewritten for ``+continue_from`` and older run-folder paths, then
    Hydra; exits with status 1 and one line on stderr on error."""
    split = unquoted_space(argv)  # key=/tmp/my data: the shell split the value
    if split:
        sys.exit(f"main.py: error: {split}")
    with HydraErrors("main.py"):
        try:
            # +continue_from=<run folder>: resume into that folder; quote paths of older run folders (=,[])
            argv = continue_from_argv(quote_path_overrides(argv, ("finetune_from", "continue_from")))
        except (FileNotFoundError, ValueError) as err:
            sys.exit(f"main.py: error: {one_line(err)}")
        sys.argv[1:] = argv
        main()


if __name__ == "__main__":
    cli(sys.argv[1:])
