"""Re-evaluate a trained run (or any checkpoint) on a labelled split with the dataset's test-time settings.

    python validation.py --valdir=<run folder> [--ckpt best|last|<path>] [--split val|test] [key=value ...]
    python validation.py --ckpt <file.pth|.pt|.ckpt> model=<m> dataset=<d> [split=test] [--out DIR] [overrides ...]
    python validation.py --valdir=<run folder> corruptions=all|[gaussian_noise,fog,...] [severities=[1,2,3,4,5]]
        [corruption_seed=0]

Model and config come from :func:`inference.loading.load_for_inference` (as in predict.py and benchmark.py).
With ``--valdir`` (or ``--ckpt`` naming a ``.ckpt`` inside a run folder) the run's config is reloaded (the raw
config of ``hydra/config.yaml`` with the run's ``environment`` pinned, then the ``key=value`` overrides as an
OmegaConf dotlist, then resolved), e.g. ``dataset.test.mode=slide dataset.test.crop_size=[360,480]
dataset.test.stride=[240,320]`` or ``environment.data_root=../shared/data``. Results go to
``<run>/validation/<timestamp>/`` (see :func:`inference.validate.run_validation`).

``--fit-temperature`` fits temperature scaling on the val split: one scalar ``T`` dividing the
logits, by minimising the NLL of a deterministic sample of at most ``--fit-pixels`` labelled pixels; it validates
with ``T`` and then stores ``<run>/calibration/temperature.json`` (for a file outside any run folder:
``LOGDIR/<dataset>/pretrained/<file stem>/calibration/temperature.json``), which every later loading of that
checkpoint applies (see :mod:`inference.temperature`). Every validation reports ``ECE``/``MCE`` and writes a reliability
diagram (:func:`inference.validate.run_validation`).

A ``.ckpt`` outside a run folder brings its stored config (overrides applied; ``environment.*`` overrides move
its paths). For any other file the overrides are Hydra overrides of ``config/train.yaml`` (group choices
allowed); a model defining ``load_pretrained`` loads author weights, otherwise the file is a plain state dict.
Results go to ``--out``, the run's ``validation/<timestamp>/``, or
``LOGDIR/<dataset>/pretrained/<file stem>/validation/<timestamp>/``.

``corruptions=`` then evaluates the same split once per corruption x severity with the same inference settings
(the image corrupted before normalisation) and adds ``robustness.csv``, ``robustness.json`` and mPC / rPC in
``metrics.json`` (see :mod:`inference.robustness`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from core.errors import OneLineArgumentParser, run_entry, unquoted_space
from core.run_folder import RunFolder
from inference.loading import load_for_inference, pick_device, results_folder
from inference.robustness import pop_protocol, run_robustness
from inference.temperature import fit_run_temperature
from inference.validate import run_validation


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
    p.add_argument(
        "--fit-temperature",
        action="store_true",
        help="fit temperature scaling on the val split and store <run>/calibration/temperature.json",
    )
    p.add_argument(
        "--fit-pixels", type=int, default=1_000_000, help="labelled pixels sampled for --fit-temperature (1000000)"
    )
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = p.parse_intermixed_args(argv)
    split = unquoted_space(args.overrides)  # key=/tmp/my data: the shell split the value
    if split:
        p.error(split)
    splits = [o.split("=", 1)[1] for o in args.overrides if o.startswith("split=")]
    args.overrides = [o for o in args.overrides if not o.startswith("split=")]
    args.split = args.split or (splits[-1] if splits else "val")
    if args.fit_temperature and args.split != "val":
        p.error(f"--fit-temperature fits on the val split; got split {args.split!r}")
    if args.fit_pixels < 1:
        p.error(f"--fit-pixels must be >= 1, got {args.fit_pixels}")
    if not args.valdir and not args.ckpt:
        p.error("give --valdir=<run folder> or --ckpt=<checkpoint file> (with model=... dataset=...)")
    return args


def main(argv=None) -> dict:
    """Run validation.py; returns the metrics record (see :func:`inference.validate.run_validation`).

    A failed validation leaves no ``validation/<timestamp>/`` folder behind (nor any parent folder it created).
    """
    args = parse_args(argv)
    protocol, args.overrides = pop_protocol(args.overrides)
    if protocol is not None and args.fit_temperature:
        raise ValueError("--fit-temperature and corruptions= are two commands: fit the temperature first")
    device = pick_device(args.device)
    source = args.valdir or args.ckpt
    which = args.ckpt or "best" if args.valdir else "best"
    model, cfg = load_for_inference(source, args.overrides, which=which)
    created: list[Path] = []
    try:
        if args.out:
            out = Path(args.out)
        else:
            root = results_folder(cfg).validation_root
            missing = root
            while not missing.exists():  # the outermost folder this command creates is removed on failure
                created, missing = [missing], missing.parent
            out = RunFolder(root.parent).new_validation_dir()
            created = created or [out]
        if args.fit_temperature:
            return fit_run_temperature(cfg, model, out, device, args.fit_pixels, args.num_vis)
        record = run_validation(cfg, model, args.split, out, device, args.num_vis)
        if protocol is not None:
            record = run_robustness(cfg, model, args.split, out, protocol, record, device)
        return record
    except BaseException:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        raise


def entry(argv=None) -> int:
    """The command line (``python validation.py ARGS``, ``segbench-validate ARGS``): logging to stderr, then
    :func:`main` under :func:`core.errors.run_entry`; returns the exit status (1 with one line on error)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    return run_entry("validation.py", main, argv)


if __name__ == "__main__":
    sys.exit(entry())
