"""Re-evaluate a trained run (or any checkpoint) on a labelled split with the dataset's test-time settings.

    python validation.py checkpoint=<run folder> [which=best|last] [split=val|test] [key=value ...]
    python validation.py checkpoint=<file.pth|.pt|.ckpt> model=<m> dataset=<d> [split=test] [out=DIR] [overrides ...]
    python validation.py checkpoint=<run folder> corruptions=all|[gaussian_noise,fog,...] [severities=[1,2,3,4,5]]
        [corruption_seed=0]

Model and config come from :func:`inference.loading.load_for_inference` (as in predict.py and benchmark.py).
With ``checkpoint=<run folder>`` (or a ``.ckpt`` inside a run folder) the run's config is reloaded (the raw
config of ``hydra/config.yaml`` with the run's ``environment`` pinned, then the ``key=value`` overrides as an
OmegaConf dotlist, then resolved), e.g. ``dataset.test.mode=slide dataset.test.crop_size=[360,480]
dataset.test.stride=[240,320]`` or ``environment.data_root=../shared/data``. Results go to
``<run>/validation/<timestamp>/`` (see :func:`inference.validate.run_validation`).

``fit_temperature=true`` fits temperature scaling on the val split: one scalar ``T`` dividing the
logits, by minimising the NLL of a deterministic sample of at most ``fit_pixels`` labelled pixels; it validates
with ``T`` and then stores ``<run>/calibration/temperature.json`` (for a file outside any run folder:
``LOGDIR/<dataset>/pretrained/<file stem>/calibration/temperature.json``), which every later loading of that
checkpoint applies (see :mod:`inference.temperature`). Every validation reports ``ECE``/``MCE`` and writes a reliability
diagram (:func:`inference.validate.run_validation`).

A ``.ckpt`` outside a run folder brings its stored config (overrides applied; ``environment.*`` overrides move
its paths). For any other file the overrides are Hydra overrides of ``config/train.yaml`` (group choices
allowed); a model defining ``load_pretrained`` loads author weights, otherwise the file is a plain state dict.
Results go to ``out=``, the run's ``validation/<timestamp>/``, or
``LOGDIR/<dataset>/pretrained/<file stem>/validation/<timestamp>/``.

``corruptions=`` then evaluates the same split once per corruption x severity with the same inference settings
(the image corrupted before normalisation) and adds ``robustness.csv``, ``robustness.json`` and mPC / rPC in
``metrics.json`` (see :mod:`inference.robustness`).

The keys are parsed by :class:`core.command_line.KeyValueParser`; the older spellings ``--valdir``, ``--ckpt``,
``--split``, ``--out``, ``--device``, ``--num-vis``, ``--fit-temperature`` and ``--fit-pixels`` still work with one
deprecation line on stderr.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

from core.command_line import CHECKPOINT_KEY, WHICH_KEY, Key, KeyValueParser, Legacy
from core.errors import command_line
from core.run_folder import RunFolder
from inference.loading import DEVICE_KEY, config_override_keys, load_for_inference, pick_device, results_folder
from inference.robustness import pop_protocol, run_robustness
from inference.temperature import fit_run_temperature
from inference.validate import run_validation

KEYS = (
    CHECKPOINT_KEY,
    WHICH_KEY,
    Key("split", "split of the dataset; must be labelled", default="val", metavar="val|test|<name>"),
    Key("out", "output folder (default: <run>/validation/<timestamp>/)", "path", metavar="DIR"),
    DEVICE_KEY,
    Key("num_vis", "colourised predictions to save (default: the run's num_vis)", "int", metavar="N"),
    Key.switch("fit_temperature", "fit temperature scaling on the val split, store <run>/calibration/temperature.json"),
    Key("fit_pixels", "labelled pixels sampled for fit_temperature", "int", default=1_000_000, metavar="N"),
    Key(
        "corruptions",
        "also evaluate corrupted copies of the split (inference.robustness)",
        "override",
        metavar="all|[name,...]",
    ),
    Key("severities", "severities of corruptions (default [1,2,3,4,5])", "override", metavar="[1,...]"),
    Key("corruption_seed", "seed of the corruptions (default 0)", "override", metavar="N"),
)
LEGACY = (
    Legacy("--valdir", "checkpoint", use="checkpoint=<run folder>"),
    Legacy("--ckpt", lambda v: "which" if v in ("best", "last") else "checkpoint"),
    Legacy("--split", "split"),
    Legacy("--out", "out"),
    Legacy("--device", "device"),
    Legacy("--num-vis", "num_vis"),
    Legacy("--fit-temperature", "fit_temperature", nargs=0),
    Legacy("--fit-pixels", "fit_pixels"),
)


def build_parser() -> KeyValueParser:
    """The command line of validation.py: :data:`KEYS`, config overrides, the older spellings :data:`LEGACY`."""
    return KeyValueParser(
        "validation.py",
        KEYS,
        usage=__doc__.split("\n\n")[1],
        description="\n\n".join(__doc__.split("\n\n")[:1] + __doc__.split("\n\n")[2:]),
        config_keys=config_override_keys(),
        legacy=LEGACY,
    )


def parse_args(argv=None) -> SimpleNamespace:
    """The request of a validation.py command line: one attribute per key of :data:`KEYS` and ``overrides`` (config
    overrides, ``corruptions=``/``severities=``/``corruption_seed=`` included). ``--valdir X --ckpt <path>`` (older
    spelling) loads the checkpoint file ``<path>`` with the config of run ``X``: ``checkpoint`` is ``X`` and ``which``
    is ``<path>``, as :meth:`core.run_folder.RunFolder.checkpoint` takes it.

    Raises:
        SystemExit: ``--help`` (status 0) or a usage error (status 2, one line on stderr).
    """
    p = build_parser()
    args = p.parse(argv)
    flags = list(argv or [])
    valdir = [a.partition("=")[2] or b for a, b in zip(flags, [*flags[1:], ""]) if a.split("=")[0] == "--valdir"]
    ckpt = [a.partition("=")[2] or b for a, b in zip(flags, [*flags[1:], ""]) if a.split("=")[0] == "--ckpt"]
    if valdir and ckpt and ckpt[-1] not in ("best", "last"):
        args.checkpoint, args.which = valdir[-1], ckpt[-1]  # --valdir X --ckpt <path>: that file of run X
    if args.fit_temperature and args.split != "val":
        p.error(f"fit_temperature=true fits on the val split; got split {args.split!r}")
    if args.fit_pixels < 1:
        p.error(f"fit_pixels must be >= 1, got {args.fit_pixels}")
    if not args.checkpoint:
        p.error("give checkpoint=<run folder> or checkpoint=<checkpoint file> (with model=... dataset=...)")
    return args


def main(argv=None) -> dict:
    """Run validation.py; returns the metrics record (see :func:`inference.validate.run_validation`).

    A failed validation leaves no ``validation/<timestamp>/`` folder behind (nor any parent folder it created).
    """
    args = parse_args(argv)
    protocol, args.overrides = pop_protocol(args.overrides)
    if protocol is not None and args.fit_temperature:
        raise ValueError("fit_temperature=true and corruptions= are two commands: fit the temperature first")
    device = pick_device(args.device)
    model, cfg = load_for_inference(args.checkpoint, args.overrides, which=args.which)
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


entry = command_line("validation.py", main, "segbench-validate")

if __name__ == "__main__":
    sys.exit(entry())
