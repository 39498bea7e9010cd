"""Label photos of any size (300x200 .. 6000x4000 and beyond) with a trained model.

    python predict.py --ckpt <run folder | file.ckpt> <images or folders ...> [--out DIR] [--mode auto|whole|slide]
                      [--crop-size H W] [--stride H W] [--scales 0.5 1.0] [--flip] [--window-batch 4]
                      [--accumulate-on cpu] [--device cuda] [--backend openvino:int8] [--uncertainty]
                      [key=value ...]
    python predict.py --ckpt <file.pth> model=<m> dataset=<d> <images ...>     # plain or author weights
    python predict.py --ckpt <run> --preset production <photos ...>             # flat time per photo

Per image ``DIR/<stem>_label.png`` (trainIds, 8-bit), ``DIR/<stem>_overlay.png`` (photo blended with the class
colours, legend of the classes found: colour, name, pixel share) and ``DIR/<stem>.json`` (size, settings used,
per-class pixel fractions, timing in seconds, peak memory in MiB); prints the per-image time and writes
``DIR/summary.json``. ``--uncertainty`` also writes ``DIR/<stem>_uncertainty.png``: the per-pixel normalised
entropy of the merged class probabilities, ``-sum_k p_k log p_k / log K`` in [0, 1] (0: one class certain, 1: all
classes equally likely), through the magma colour map with a colour bar, at the photo's size (the probabilities
include the run's temperature scaling when ``validation.py --fit-temperature`` stored one). Defaults: the dataset's test-time settings (``dataset.test``, including its test scale
``resize``), then ``--preset`` (``config/inference/<name>.yaml``), then the options; ``--mode auto`` switches
to ``slide`` for images above ``--max-whole-pixels`` at the test scale (windows of ``dataset.test.crop_size``,
else the training ``dataset.crop_size``; stride 2/3 of the window). ``--preset production`` resizes every
photo to the dataset's test scale and runs one whole-image forward: the time per photo stays flat with its
size (figures in docs/inference.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from core.errors import OneLineArgumentParser, one_line, run_entry, unquoted_space
from datasets.image_io import IMAGE_EXTENSIONS
from inference.loading import load_for_inference, pick_device
from inference.predict import Predictor, list_images, load_preset
from inference.settings import InferenceSettings
from inference.temperature import set_temperature, temperature_of


def _image_or_path(arg: str) -> bool:
    """An input that stands for itself: an existing path or a name with an image suffix (``photo.jpg``)."""
    return Path(arg).exists() or Path(arg).suffix.lower() in IMAGE_EXTENSIONS


def parse_args(argv=None) -> argparse.Namespace:
    """Command line of predict.py; positional arguments that are not existing paths and contain ``=`` are
    config overrides."""
    p = OneLineArgumentParser(
        prog="predict.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--ckpt", required=True, help="run folder (uses checkpoints/best.ckpt), a .ckpt, or a .pth/.pt")
    p.add_argument("--which", default="best", help="best | last: checkpoint of a run folder (default best)")
    p.add_argument("inputs", nargs="+", help="image files or folders, and key=value overrides")
    p.add_argument("--out", default="outputs/predictions", help="output folder (default outputs/predictions)")
    p.add_argument("--preset", default=None, help="inference preset of config/inference/ (e.g. production)")
    p.add_argument("--mode", default=None, choices=["auto", "whole", "slide"], help="default: the preset's, else auto")
    p.add_argument("--resize", type=int, nargs="+", help="test scale LONG SHORT (keep ratio, MMSeg semantics)")
    p.add_argument("--max-whole-pixels", type=int, default=2048 * 1024, help="auto: slide above this (pixels)")
    p.add_argument("--crop-size", type=int, nargs="+", help="slide window H W (one value: square)")
    p.add_argument("--stride", type=int, nargs="+", help="slide stride H W (one value: square)")
    p.add_argument("--scales", type=float, nargs="+", help="test scales, e.g. 0.5 1.0 1.5")
    p.add_argument("--flip", action="store_true", default=None, help="add left-right flipped views")
    p.add_argument("--window-batch", type=int, help="slide windows per forward pass")
    p.add_argument("--accumulate-on", help="device of the probability accumulator, e.g. cpu")
    p.add_argument("--device", help="cpu | cuda | cuda:1 (default: cuda if available)")
    p.add_argument(
        "--backend",
        default="eager",
        help="NAME[:PRECISION] running the forward (benchmarking.backends): eager, onnxruntime, openvino, "
        "openvino:bf16, openvino:int8 (NNCF, calibrated on config/benchmark.yaml calibration.images training images; "
        "calibration.* overrides, e.g. calibration.images=64, change them)",
    )
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the class colours in the overlay")
    p.add_argument(
        "--uncertainty", action="store_true", help="also write <stem>_uncertainty.png (normalised entropy map)"
    )
    args = p.parse_intermixed_args(argv)
    split = unquoted_space(args.inputs, literal=_image_or_path)  # key=/tmp/my data, split by the shell
    if split:
        p.error(split)
    args.overrides = [a for a in args.inputs if "=" in a and not Path(a).exists()]
    args.inputs = [a for a in args.inputs if a not in args.overrides]
    if not args.inputs:
        p.error("no images given")
    return args


def load_predictor(args) -> Predictor:
    """Model and config from ``--ckpt`` (:func:`inference.loading.load_for_inference`), settings from the dataset's
    ``test`` settings, then ``--preset``, then the command-line options."""
    calibration = [o for o in args.overrides if o.split("=", 1)[0].lstrip("+~").startswith("calibration.")]
    if calibration and args.backend == "eager":
        raise ValueError(f"{calibration[0]}: calibration.* overrides need --backend NAME:int8 (e.g. openvino:int8)")
    overrides = [o for o in args.overrides if o not in calibration]
    model, cfg = load_for_inference(args.ckpt, overrides, which=args.which)
    preset = load_preset(args.preset)
    mode = args.mode or preset.pop("mode", None) or "auto"
    if mode in ("whole", "slide"):
        preset["mode"] = mode
    pair = lambda v: None if v is None else (v * 2 if len(v) == 1 else v)
    base = InferenceSettings.from_config(
        {**dict(cfg.dataset.get("test") or {}), **preset},
        crop_size=pair(args.crop_size),
        stride=pair(args.stride),
        scales=args.scales,
        flip=args.flip,
        window_batch=args.window_batch,
        accumulate_on=args.accumulate_on,
        resize=pair(args.resize),
    )
    device = pick_device(args.device)
    if args.backend != "eager":
        from benchmarking.backends import backend_module

        temperature = temperature_of(model)
        model = set_temperature(backend_module(model, args.backend, cfg, device, calibration), temperature)
    return Predictor(model, cfg, base, device, mode, args.max_whole_pixels, args.uncertainty)


class ImagesFailed(RuntimeError):
    """Some images of the inputs could not be labelled (each listed with its error in ``summary.json``)."""


def main(argv=None) -> list[dict]:
    """Run predict.py; returns the per-image records.

    An image that cannot be read or labelled does not stop the others: it is listed with its error under
    ``failed`` in ``summary.json``, and :class:`ImagesFailed` is raised at the end (exit status 1).
    """
    args = parse_args(argv)
    files = list_images(args.inputs)
    predictor = load_predictor(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records, failed, t0 = [], [], time.perf_counter()
    for i, f in enumerate(files, 1):
        try:
            r = predictor.predict_file(f, out, alpha=args.alpha)
        except Exception as e:  # next image; listed in summary.json
            failed.append({"image": str(f), "error": one_line(e)})
            print(f"[{i}/{len(files)}] {f.name} FAILED: {one_line(e)}", file=sys.stderr, flush=True)
            continue
        records.append(r)
        t = r["timing_s"]
        print(
            f"[{i}/{len(files)}] {f.name} {r['width']}x{r['height']} {r['inference']['mode']}: "
            f"inference {t['inference']:.2f} s, total {t['total']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    summary = {
        "checkpoint": str(args.ckpt),
        "backend": args.backend,
        "images": len(records),
        "seconds": round(time.perf_counter() - t0, 2),
        "per_image": [
            {k: r[k] for k in ("image", "width", "height", "timing_s", "peak_rss_mib")}
            | {"mode": r["inference"]["mode"]}
            for r in records
        ],
        "failed": failed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{len(records)} images in {summary['seconds']:.1f} s -> {out}")
    if failed:
        raise ImagesFailed(
            f"{len(failed)} of {len(files)} images failed (listed in {out / 'summary.json'}); first: "
            f"{failed[0]['error']}"
        )
    return records


def entry(argv=None) -> int:
    """The command line (``python predict.py ARGS``, ``segbench-predict ARGS``): logging to stderr, then
    :func:`main` under :func:`core.errors.run_entry`; returns the exit status (1 with one line on error)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    return run_entry("predict.py", main, argv)


if __name__ == "__main__":
    sys.exit(entry())
