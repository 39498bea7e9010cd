"""``python benchmark.py export``: a run's model (or any model config, random weights) to ONNX and OpenVINO IR.

    python benchmark.py export checkpoint=<run folder | .ckpt> [formats=onnx,openvino,openvino_int8]
    python benchmark.py export model=hrnet model.width=18 [out=DIR] [resolution=512x512] [key=value ...]

``key=value`` arguments are ``config/benchmark.yaml`` overrides (``parity``, ``calibration``, ``threads``,
``device``...), except ``out`` (output folder) and ``formats``. The files go to a new folder
``<run>/export/<YYYY-MM-DD_HH-MM-SS>/`` (``out``, or ``LOGDIR/export/<dataset>/<model>/<timestamp>/`` without a
run folder), written under a temporary name and renamed when complete, so a failed export leaves nothing:

* ``model.onnx``                 opset 17, input ``x`` float32[N, 3, H, W] normalised, output ``out`` logits
  float32[N, K, H, W]; N, H, W dynamic, H and W multiples of ``size_multiple`` (pad bottom/right with zeros);
* ``openvino_fp32/model.xml``    the same graph as OpenVINO IR (fp32 weights);
* ``openvino_int8/model.xml``    NNCF post-training quantisation on ``calibration.images`` images of
  ``calibration.split`` (with ``formats`` containing ``openvino_int8``);
* ``export.json``                source weights, model and dataset config (mean, std, classes), input contract,
  versions, and per file the parity against eager 32-true (:mod:`benchmarking.parity`) with the tolerance check;
  with ``calibration.accuracy_control.enabled=true`` the int8 accuracy-control choices and measured drop.

Exit code 0 when every file is within ``parity.tolerance``, 1 when one exceeds it (files are kept, the
violations printed), 2 on bad input (one line naming it).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

FORMATS = {
    "onnx": ("onnxruntime", "32-true"),
    "openvino": ("openvino", "32-true"),
    "openvino_int8": ("openvino", "int8"),
}
DEFAULT_FORMATS = "onnx,openvino"
log = logging.getLogger("segbench.export")


def compose_benchmark_config(overrides: list[str]):
    """``config/benchmark.yaml`` composed with Hydra ``overrides`` (resolved, struct off)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    import core.hydra  # noqa: F401  (registers resolvers)
    import models.pretrained  # noqa: F401  (registers ${pretrained_norm:...})

    GlobalHydra.instance().clear()
    config_dir = Path(__file__).resolve().parents[1] / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="benchmark", overrides=overrides, return_hydra_config=True)
    choice = str(cfg.hydra.runtime.choices.get("model", ""))
    GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, False)
    del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg, choice


def export_model(
    cfg, model_choice: str, formats: list[str], out: str | None = None, overrides: Sequence[str] = ()
) -> tuple[Path, dict]:
    """Export the model of ``cfg`` (``checkpoint=`` run folder / file through the benchmark's loader
    :func:`benchmarking.loading.load_model` with the command's ``overrides``, or random weights) in ``formats``.

    Returns:
        (the new export folder, the ``export.json`` content).

    Raises:
        ValueError: unknown format (valid names listed); bad config values (from the runner's helpers).
        FileNotFoundError: missing checkpoint.
        ImportError: onnx/openvino/nncf missing (the requirements file named).
    """
    import torch

    from benchmarking.backends import (
        BackendOptions,
        check_openvino_precision,
        eager,
        export_onnx,
        export_openvino,
        onnxruntime_runner,
        openvino_runner,
        size_multiple,
    )
    from benchmarking.loading import load_model, parse_resolution
    from benchmarking.parity import compare, split_images, tolerance_for, violations
    from core.extras import require

    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats={','.join(formats)}: unknown {bad}; valid: {sorted(FORMATS)}")
    require("onnx")  # fail before building the model
    if any(FORMATS[f][0] == "openvino" for f in formats):
        require("openvino")
    if "openvino_int8" in formats:
        require("nncf")
    h, w = parse_resolution(cfg.resolution)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    model, cfg, model_choice, weights, run = load_model(cfg, model_choice, overrides)
    model = model.eval()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    if out:
        final = Path(out)
    elif run is not None:
        final = run.export_root / stamp
    else:
        final = Path(str(cfg.LOGDIR)) / "export" / str(cfg.dataset.name) / (model_choice or "model") / stamp
    if final.exists():
        raise ValueError(f"export folder {final} already exists; give another out=")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        torch.manual_seed(int(cfg.seed))
        example = torch.randn(1, 3, h, w)
        options = BackendOptions.from_config(cfg, folder=tmp, threads=int(cfg.threads) if cfg.get("threads") else None)
        files = {}
        export_onnx(model, example, tmp / "model.onnx")
        files["onnx"] = tmp / "model.onnx"
        if "openvino" in formats:
            files["openvino"] = export_openvino(model, example, "32-true", options)
        if "openvino_int8" in formats:
            files["openvino_int8"] = export_openvino(model, example, "int8", options)
        formats = [f for f in FORMATS if f in formats]
        p = cfg.get("parity") or {}
        split = str(cfg.get("eval_split") or cfg.dataset.get("val_split", "val"))
        try:
            images, on = split_images(cfg, split, int(p.get("images", 4))), split
        except (OSError, ValueError) as e:
            log.warning(f"parity on a random {w}x{h} input: split {split!r} unreadable ({e})")
            images, on = [example], f"random {w}x{h} input"
        cpu, multiple = torch.device("cpu"), size_multiple(model)
        reference = eager(model, example, "32-true", cpu)
        parity = {}
        for f in formats:
            backend, precision = FORMATS[f]
            if backend == "onnxruntime":
                runner = onnxruntime_runner(files[f], multiple, cpu, options.threads)
            else:
                check_openvino_precision(precision)
                runner = openvino_runner(files[f], precision, multiple, options.threads)
            res = compare(reference, runner, images)
            v = violations(res, tolerance_for(p.get("tolerance"), precision))
            parity[f] = {"file": str(files[f].relative_to(tmp)), "backend": backend, "precision": precision}
            parity[f] |= res | {"on": f"{on} ({len(images)} images)", "violations": v, "ok": not v}
        info = {
            "source": str(weights) if weights is not None else "random",
            "run": str(run.root) if run is not None else None,
            "model_choice": model_choice,
            "input": {
                "name": "x",
                "shape": ["N", 3, "H", "W"],
                "dtype": "float32",
                "size_multiple": multiple,
                "pad": "zeros at bottom/right after normalisation; crop the logits back",
                "mean": list(cfg.dataset.mean),
                "std": list(cfg.dataset.std),
                "scale": "RGB / 255, then (x - mean) / std",
            },
            "output": {"name": "out", "shape": ["N", "K", "H", "W"], "dtype": "float32", "kind": "logits"},
            "num_classes": int(cfg.dataset.num_classes),
            "class_names": [str(n) for n in cfg.dataset.class_names],
            "opset": 17,
            "traced_at": f"{w}x{h}",
            "calibration": options.calibration_note if "openvino_int8" in formats else None,
            "accuracy_control": options.report.get("accuracy_control") if "openvino_int8" in formats else None,
            "parity_reference": "eager 32-true",
            "parity": parity,
            "versions": _versions(),
            "model": _plain(cfg.model),
            "dataset": str(cfg.dataset.name),
        }
        (tmp / "export.json").write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, info


def _plain(node):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True)


def _versions() -> dict:
    from core.versions import EXPORT_PACKAGES, package_versions

    return package_versions(EXPORT_PACKAGES, keep_missing=True)


def run_export(argv: list[str]) -> int:
    """``benchmark.py export`` with ``argv`` (``key=value``); returns the exit code (0 ok, 1 parity exceeded, 2
    bad input)."""
    out, formats, overrides = None, DEFAULT_FORMATS, []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            print(f"benchmark.py export: bad argument {arg!r}; use key=value", file=sys.stderr)
            return 2
        if key == "out":
            out = value
        elif key == "formats":
            formats = value.strip("[]")
        else:
            overrides.append(arg)
    try:
        cfg, choice = compose_benchmark_config(overrides)
        folder, info = export_model(cfg, choice, [f.strip() for f in formats.split(",") if f.strip()], out, overrides)
    except Exception as e:
        from benchmarking.run_record import error_text

        log.debug(traceback.format_exc())
        print(f"benchmark.py export: {error_text(e)}", file=sys.stderr)
        return 2
    bad = 0
    for p in info["parity"].values():
        state = "ok" if p["ok"] else "EXCEEDED: " + "; ".join(p["violations"])
        bad += not p["ok"]
        print(
            f"{folder / p['file']}: max |Δ logit| {p['max_abs_logit']:.3g} (max |logit| {p['max_abs_reference']:.3g}), "
            f"label agreement {p['label_agreement']:.4f} vs eager 32-true on {p['on']}: {state}"
        )
    print(folder / "export.json")
    return 1 if bad else 0
