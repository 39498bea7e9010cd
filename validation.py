"""Re-evaluate a trained run (or any checkpoint) on a labelled split with the dataset's test-time settings.

    python validation.py --valdir=<run folder> [--ckpt best|last|<path>] [--split val|test] [key=value ...]
    python validation.py --ckpt <file.pth|.pt|.ckpt> model=<m> dataset=<d> [split=test] [--out DIR] [overrides ...]

With ``--valdir`` the run's config is reloaded (``inference.loading.load_run_config``: the raw config of
``hydra/config.yaml`` with the run's ``environment`` pinned, then the ``key=value`` overrides as an OmegaConf
dotlist, then resolved), e.g. ``dataset.test.mode=slide dataset.test.crop_size=[360,480]
dataset.test.stride=[240,320]`` or ``environment.data_root=../shared/data``. Results go to
``<run>/validation/<timestamp>/`` (see :func:`inference.validate.run_validation`).

Without ``--valdir`` the overrides are Hydra overrides of ``config/train.yaml`` (group choices allowed);
a model defining ``load_pretrained`` loads author weights, otherwise the file is a plain state dict (or a
Lightning ``.ckpt``, whose stored config is used). Results go to ``--out`` or
``LOGDIR/<dataset>/pretrained/<file stem>/validation/<timestamp>/``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from inference.loading import apply_overrides, compose_config, config_from_checkpoint, load_run_config, pick_device
from inference.validate import run_validation
from utils.errors import OneLineArgumentParser, run_entry
from utils.run_folder import RunFolder


def parse_args(argv=None) -> argparse.Namespace:
    """Command line of validation.py (``split=<name>`` among the overrides is accepted like ``--split``)."""
    p = OneLineArgumentParser(
        prog="validation.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--valdir", help="run folder written by main.py")
    p.add_argument("--ckpt", help="best (default) | last | a checkpoint path (.ckpt, .pth, .pt)")
    p.add_argument("--split", help="val (default) | test | a split name of the dataset; must be labelled")
    p.add_argument("--out", help="output folder (default: <run>/validation/<timestamp>/)")
    p.add_argument("--device", help="cpu | cuda | cuda:1 ... (default: cuda if available)")
    p.add_argument("--num-vis", type=int, help="colourised predictions to save (default: the run's num_vis)")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = p.parse_intermixed_args(argv)
    splits = [o.split("=", 1)[1] for o in args.overrides if o.startswith("split=")]
    args.overrides = [o for o in args.overrides if not o.startswith("split=")]
    args.split = args.split or (splits[-1] if splits else "val")
    if not args.valdir and not args.ckpt:
        p.error("give --valdir=<run folder> or --ckpt=<checkpoint file> (with model=... dataset=...)")
    return args


def main(argv=None) -> dict:
    """Run validation.py; returns the metrics record (see :func:`inference.validate.run_validation`).

    A failed validation leaves no ``validation/<timestamp>/`` folder behind (nor a ``validation/`` it created).
    """
    args = parse_args(argv)
    created: list[Path] = []
    try:
        if args.valdir:
            run = RunFolder(args.valdir)
            cfg = load_run_config(run.root, args.overrides)
            ckpt = run.checkpoint(args.ckpt or "best")
            root = run.validation_root
        else:
            ckpt = Path(args.ckpt)
            if not ckpt.is_file():
                raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
            if ckpt.suffix == ".ckpt":
                cfg = apply_overrides(config_from_checkpoint(ckpt), args.overrides)
            else:
                cfg = compose_config(args.overrides)
            root = RunFolder(Path(cfg.LOGDIR) / str(cfg.dataset.name) / "pretrained" / ckpt.stem).validation_root
        if args.out:
            out = Path(args.out)
        else:
            missing = root
            while not missing.exists():  # the outermost folder this command creates is removed on failure
                created, missing = [missing], missing.parent
            out = RunFolder(root.parent).new_validation_dir()
            created = created or [out]
        return run_validation(cfg, ckpt, args.split, out, pick_device(args.device), args.num_vis)
    except BaseException:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        raise


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    sys.exit(run_entry("validation.py", main))
