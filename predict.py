"""Label photos of any size (300x200 .. 6000x4000 and beyond) with a trained model.

    python predict.py checkpoint=<run folder | file.ckpt> inputs=[a.jpg,photos/] [out=DIR] [mode=auto|whole|slide]
                      [crop_size=[H,W]] [stride=[H,W]] [scales=[0.5,1.0]] [flip=true] [window_batch=4]
                      [accumulate_on=cpu] [device=cuda] [backend=openvino:int8] [uncertainty=true]
                      [key=value ...]
    python predict.py checkpoint=<file.pth> model=<m> dataset=<d> inputs=[<images>]   # plain or author weights
    python predict.py checkpoint=<run> preset=production inputs=[<photos>]            # flat time per photo

Per image ``DIR/<stem>_label.png`` (trainIds, 8-bit), ``DIR/<stem>_overlay.png`` (photo blended with the class
colours, legend of the classes found: colour, name, pixel share) and ``DIR/<stem>.json`` (size, settings used,
per-class pixel fractions, timing in seconds, peak memory in MiB); prints the per-image time and writes
``DIR/summary.json``. ``uncertainty=true`` also writes ``DIR/<stem>_uncertainty.png``: the per-pixel normalised
entropy of the merged class probabilities, ``-sum_k p_k log p_k / log K`` in [0, 1] (0: one class certain, 1: all
classes equally likely), through the magma colour map with a colour bar, at the photo's size (the probabilities
include the run's temperature scaling when ``validation.py fit_temperature=true`` stored one). Defaults: the dataset's test-time settings (``dataset.test``, including its test scale
``resize``), then ``preset=`` (``config/inference/<name>.yaml``), then the other keys; ``mode=auto`` switches
to ``slide`` for images above ``max_whole_pixels`` at the test scale (windows of ``dataset.test.crop_size``,
else the training ``dataset.crop_size``; stride 2/3 of the window). ``preset=production`` resizes every
photo to the dataset's test scale and runs one whole-image forward: the time per photo stays flat with its
size (figures in docs/inference.md).

The keys are parsed by :class:`core.command_line.KeyValueParser`; the older spellings (``--ckpt``, ``--which``,
``--out``, ``--crop-size H W``, ``--flip``, ``--uncertainty``, ... and image paths as positional arguments) still
work with one deprecation line on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from core.command_line import CHECKPOINT_KEY, WHICH_KEY, Key, KeyValueParser, Legacy
from core.errors import command_line, one_line
from datasets.image_io import IMAGE_EXTENSIONS
from inference.loading import DEVICE_KEY, config_override_keys, load_for_inference, pick_device
from inference.predict import Predictor, list_images, load_preset
from inference.settings import InferenceSettings
from inference.temperature import set_temperature, temperature_of

KEYS = (
    replace(CHECKPOINT_KEY, required=True),
    Key("inputs", "image files or folders", "list", metavar="[a.jpg,photos/]", required=True),
    WHICH_KEY,
    Key("out", "output folder", "path", default="outputs/predictions", metavar="DIR"),
    Key("preset", "inference preset of config/inference/ (e.g. production)", metavar="<name>"),
    Key("mode", "default: the preset's, else auto", metavar="auto|whole|slide", choices=("auto", "whole", "slide")),
    Key("resize", "test scale [LONG,SHORT] (keep ratio, MMSeg semantics)", "ints", metavar="[L,S]"),
    Key("max_whole_pixels", "mode=auto: slide above this many pixels", "int", default=2048 * 1024, metavar="N"),
    Key("crop_size", "slide window [H,W] (one value: square)", "ints", metavar="[H,W]"),
    Key("stride", "slide stride [H,W] (one value: square)", "ints", metavar="[H,W]"),
    Key("scales", "test scales, e.g. [0.5,1.0,1.5]", "floats", metavar="[0.5,1.0]"),
    Key("flip", "add left-right flipped views", "bool", metavar="true"),
    Key("window_batch", "slide windows per forward pass", "int", metavar="N"),
    Key("accumulate_on", "device of the probability accumulator, e.g. cpu", metavar="cpu"),
    DEVICE_KEY,
    Key(
        "backend",
        "NAME[:PRECISION] running the forward (benchmarking.backends): eager, onnxruntime, openvino, openvino:bf16, "
        "openvino:int8 (NNCF, calibrated on config/benchmark.yaml calibration.images training images; calibration.* "
        "overrides, e.g. calibration.images=64, change them)",
        default="eager",
        metavar="openvino:int8",
    ),
    Key("alpha", "weight of the class colours in the overlay", "float", default=0.5, metavar="0.5"),
    Key.switch("uncertainty", "also write <stem>_uncertainty.png (normalised entropy map)"),
)
LEGACY = (
    Legacy("--ckpt", "checkpoint"),
    Legacy("--which", "which"),
    Legacy("--out", "out"),
    Legacy("--preset", "preset"),
    Legacy("--mode", "mode"),
    Legacy("--resize", "resize", nargs="+"),
    Legacy("--max-whole-pixels", "max_whole_pixels"),
    Legacy("--crop-size", "crop_size", nargs="+"),
    Legacy("--stride", "stride", nargs="+"),
    Legacy("--scales", "scales", nargs="+"),
    Legacy("--flip", "flip", nargs=0),
    Legacy("--window-batch", "window_batch"),
    Legacy("--accumulate-on", "accumulate_on"),
    Legacy("--device", "device"),
    Legacy("--backend", "backend"),
    Legacy("--alpha", "alpha"),
    Legacy("--uncertainty", "uncertainty", nargs=0),
)


def _image_or_path(arg: str) -> bool:
    """An input that stands for itself: an existing path or a name with an image suffix (``photo.jpg``)."""
    return Path(arg).exists() or Path(arg).suffix.lower() in IMAGE_EXTENSIONS


def build_parser() -> KeyValueParser:
    """The command line of predict.py: :data:`KEYS`, config overrides (``calibration.*`` too), the older spellings
    :data:`LEGACY` and image paths as positional arguments."""
    parts = __doc__.split("\n\n")
    return KeyValueParser(
        "predict.py",
        KEYS,
        usage=parts[1],
        description="\n\n".join(parts[:1] + parts[2:]),
        config_keys=config_override_keys() | {"calibration"},
        legacy=LEGACY,
        positional="inputs",
        literal=_image_or_path,
    )


def parse_args(argv=None) -> SimpleNamespace:
    """The request of a predict.py command line: one attribute per key of :data:`KEYS` and ``overrides`` (config
    overrides, ``calibration.*`` included).

    Raises:
        SystemExit: ``--help`` (status 0) or a usage error (status 2, one line on stderr), e.g. no ``inputs``.
    """
    p = build_parser()
    args = p.parse(argv)
    if not args.inputs:
        p.error("no images given: inputs=[a.jpg,photos/]")
    return args


def load_predictor(args) -> Predictor:
    """Model and config from ``checkpoint=`` (:func:`inference.loading.load_for_inference`), settings from the
    dataset's ``test`` settings, then ``preset=``, then the other keys of the command line."""
    calibration = [o for o in args.overrides if o.split("=", 1)[0].lstrip("+~").startswith("calibration.")]
    if calibration and args.backend == "eager":
        raise ValueError(f"{calibration[0]}: calibration.* overrides need backend=NAME:int8 (e.g. openvino:int8)")
    overrides = [o for o in args.overrides if o not in calibration]
    model, cfg = load_for_inference(args.checkpoint, overrides, which=args.which)
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
        "checkpoint": str(args.checkpoint),
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


entry = command_line("predict.py", main, "segbench-predict")

if __name__ == "__main__":
    sys.exit(entry())
