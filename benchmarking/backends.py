"""Execution backends and precisions for the timed forward, each behind a small registry.

``backend=`` picks how the model runs:

* ``eager``          the module as is (``model.eval()``),
* ``channels_last``  NHWC memory format for weights and input (oneDNN/cuDNN fast paths),
* ``compile``        ``torch.compile(model)`` (Inductor; compilation happens during the warm-up calls),
* ``onnxruntime``    ONNX export (:func:`export_onnx`) run by an ONNX Runtime session (``32-true``),
* ``openvino``       the same ONNX graph converted to OpenVINO IR and compiled for the CPU: ``32-true``,
  ``bf16-mixed``
  (``INFERENCE_PRECISION_HINT=bf16``, only on CPUs that list ``BF16`` in ``OPTIMIZATION_CAPABILITIES``) or
  ``int8`` (NNCF post-training quantisation on calibration images, :func:`quantize_int8`).

The last two are *exported* backends (:data:`EXPORTED`): their optional packages import lazily and a missing
one fails in one line naming the requirements file (:func:`require`). Where their files go
(:meth:`BackendOptions.exported`): an explicit ``folder``; for a trained run (``cfg.loaded_from.run_dir``) its
``<run>/export/<backend>_<precision>_<WxH>/`` (:meth:`core.run_folder.RunFolder.backend_export_dir`), written
under a temporary name, renamed when complete and reused while its ``manifest.json`` (weights file, model config,
backend, precision, traced size, calibration, versions) matches; otherwise (random weights, a weights file outside
a run folder) a temporary folder removed as soon as the runtime has loaded the files.

Exported graphs take any N, H, W that is a multiple of the model's ``stride`` attribute (smp/ESPNet pad to it
inside ``forward``; the runner pads and crops outside the graph the same way, with zeros after normalisation), so
one file serves every image size.

``precision=`` uses Lightning's names (:mod:`core.precision`): for the torch backends ``32-true`` (no
autocast), ``bf16-mixed``, ``16-mixed`` (``torch.autocast`` on the model's device; ``fp32``/``bf16``/``fp16``
are aliases); the quantised ``int8`` (:data:`core.precision.QUANTIZED`) exists for ``openvino`` only. Each
backend declares its precisions (:data:`BACKEND_PRECISIONS`). A backend returns
``run(x: float32[N,3,H,W]) -> float[N,K,h,w]`` logits (the model's ``"out"``).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.precision import PRECISIONS, autocast, canonical_precision
from core.versions import EXPORT_PACKAGES, package_versions

Runner = Callable[[torch.Tensor], torch.Tensor]

BACKENDS: dict[str, Callable[..., Runner]] = {}
#: precisions each backend accepts (``register_backend(precisions=...)``)
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {}
#: backends that run an exported graph instead of the module (their records carry parity vs eager 32-true)
EXPORTED: set[str] = set()
#: optional packages -> the requirements file that installs them
EXTRAS = {"onnxruntime": "requirements-onnx.txt", "onnx": "requirements-onnx.txt"}
EXTRAS |= {"openvino": "requirements-openvino.txt", "nncf": "requirements-openvino.txt"}
ONNX_OPSET = 17
#: version of the export layout and manifest (``manifest.json`` of a run's export folder)
EXPORT_FORMAT = 1
MANIFEST = "manifest.json"
TORCH_PRECISIONS = tuple(PRECISIONS)  # the autocast precisions of core.precision


@dataclass
class BackendOptions:
    """What exported backends need beyond the model.

    Attributes:
        folder: where the exported files go (``model.onnx``, ``openvino_<precision>/model.xml``), rewritten by
            every export; None: see ``cache_root``.
        cache_root: a run's ``export/`` folder: each backend, precision and traced size is exported once to its
            own sub-folder and reused while its manifest matches (:meth:`exported`); None (or no ``source``): a
            temporary folder, removed once the runtime has loaded the files.
        source: what the exported model is, for the manifest: weights file (path, size, mtime), model config,
            dataset.
        calibration: callable returning the int8 calibration images, each float32[1, 3, H, W] normalised
            like the model's input (``precision=int8`` only).
        threads: intra-op threads of the runtime (default ``torch.get_num_threads()``).
        quantize: keyword options of ``nncf.quantize`` for int8 (``calibration.nncf`` of
            ``config/benchmark.yaml``; see :func:`nncf_options`).
        float_first_last: int8 keeps the first and last convolution in float (``calibration.float_first_last``;
            :func:`quantize_int8`).
        calibration_note: the calibration in words, for records and export manifests.
    """

    folder: Path | None = None
    calibration: Callable[[], Iterable[torch.Tensor]] | None = None
    threads: int | None = None
    quantize: dict = field(default_factory=dict)
    float_first_last: bool = False
    calibration_note: str = ""
    cache_root: Path | None = None
    source: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg, calibration: Mapping | None = None, **kwargs) -> BackendOptions:
        """Options whose int8 calibration is ``calibration`` (default ``cfg.calibration``): ``images`` images of
        ``split`` of ``cfg.dataset`` through the test pipeline (:func:`benchmarking.parity.split_images`),
        quantised with the ``nncf`` options. ``kwargs``: ``folder``, ``threads``.

        Without ``folder``, a model loaded from a run folder (``cfg.loaded_from.run_dir``, set by
        :func:`inference.loading.load_for_inference`) keeps its exports in the run's ``export/`` folder
        (``cache_root``), described by its weights file and model config (``source``).

        Raises:
            ValueError: an unknown ``calibration.nncf`` key (the valid ones listed), or a ``float_first_last`` that
                is not a boolean, before anything is exported.
        """
        from omegaconf import OmegaConf

        from benchmarking.parity import split_images

        c = calibration if calibration is not None else (cfg.get("calibration") or {})
        split, n = str(c.get("split") or "train"), int(c.get("images") or 0)
        quantize = c.get("nncf") or {}
        quantize = OmegaConf.to_container(quantize, resolve=True) if OmegaConf.is_config(quantize) else dict(quantize)
        nncf_options(quantize)  # fail on a bad key before anything is exported
        first_last = c.get("float_first_last", False)
        if not isinstance(first_last, bool):
            raise ValueError(f"calibration.float_first_last must be true or false, got {first_last!r}")
        words = (", first and last convolution in float" if first_last else "") + "".join(
            f", {k}={v}" for k, v in quantize.items()
        )
        loaded = cfg.get("loaded_from") or {}
        if kwargs.get("folder") is None and loaded.get("run_dir") and loaded.get("weights"):
            from core.run_folder import RunFolder

            weights = Path(str(loaded.get("weights"))).resolve()
            st = weights.stat()
            kwargs.setdefault("cache_root", RunFolder(str(loaded.get("run_dir"))).export_root)
            kwargs.setdefault(
                "source",
                {
                    "weights": str(weights),
                    "weights_size": st.st_size,
                    "weights_mtime_ns": st.st_mtime_ns,
                    "model": OmegaConf.to_container(cfg.model, resolve=True),
                    "dataset": str(cfg.dataset.get("name", "")),
                },
            )
        return cls(
            calibration=lambda: split_images(cfg, split, n),
            quantize=quantize,
            float_first_last=first_last,
            calibration_note=f"{split} ({n} images{words}, nncf.quantize)",
            **kwargs,
        )

    def manifest(self, backend: str, precision: str, example: torch.Tensor) -> dict:
        """What an export of ``backend``/``precision`` traced on ``example`` depends on (``manifest.json``).

        Returns:
            format, backend, precision, traced size ``WxH``, ONNX opset, ``source``, int8 calibration, package
            versions (torch, onnx, onnxruntime, openvino, nncf).
        """
        h, w = example.shape[-2:]
        return {
            "format": EXPORT_FORMAT,
            "backend": backend,
            "precision": precision,
            "traced_at": f"{w}x{h}",
            "opset": ONNX_OPSET,
            "source": self.source,
            "calibration": self.calibration_note if precision == "int8" else None,
            "versions": package_versions(EXPORT_PACKAGES, keep_missing=True),
        }

    @contextmanager
    def exported(
        self, backend: str, precision: str, example: torch.Tensor, write: Callable[[Path], Path]
    ) -> Iterator[Path]:
        """The exported file of ``backend``/``precision``: ``write(folder)`` writes it and returns its path.

        * ``folder`` set: written there (every time);
        * ``cache_root`` and ``source`` set: ``<cache_root>/<backend>_<precision>_<WxH>/`` (``WxH`` of
          ``example``) is reused when its ``manifest.json`` equals :meth:`manifest`; otherwise written into a
          temporary sibling folder with the manifest and renamed into place (an older export there is replaced), so
          the folder is complete or absent and repeated runs add nothing;
        * else: a temporary folder, removed when the ``with`` block ends (load the files inside it).

        Args:
            backend: backend name (folder name and manifest).
            precision: canonical precision.
            example: the tracing input float32[N, 3, H, W].
            write: ``write(folder) -> path of the file to run``.

        Yields:
            the path returned by ``write`` (or the reused file).
        """
        if self.folder is not None:
            self.folder = Path(self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            yield write(self.folder)
        elif self.cache_root is not None and self.source:
            from core.run_folder import backend_export_name

            h, w = example.shape[-2:]
            final = Path(self.cache_root) / backend_export_name(backend, precision, f"{w}x{h}")
            yield cached_export(final, self.manifest(backend, precision, example), write)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="segbench_export_"))
            try:
                yield write(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _same_export(found: dict | None, manifest: dict) -> bool:
    return found is not None and {k: v for k, v in found.items() if k != "file"} == manifest


def cached_export(final: Path, manifest: dict, write: Callable[[Path], Path]) -> Path:
    """The file of the export in ``final`` when its ``manifest.json`` matches ``manifest``; otherwise
    ``write(tmp)`` into a temporary sibling folder, the manifest (with the file's relative path) added last, and
    the folder renamed to ``final`` (an older export there moved aside and removed). A failed export leaves
    nothing; a concurrent run that published the same export first wins and this one's copy is dropped.

    Args:
        final: the export folder, e.g. ``<run>/export/openvino_int8_512x512``.
        manifest: what the export depends on (:meth:`BackendOptions.manifest`).
        write: ``write(folder) -> path of the file to run`` (inside ``folder``).

    Returns:
        the exported file inside ``final``.

    Raises:
        OSError: ``final`` cannot be written, or is replaced by other runs on every attempt.
    """
    found = _read_manifest(final)
    if _same_export(found, manifest) and (final / found["file"]).is_file():
        return final / found["file"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        rel = write(tmp).relative_to(tmp)
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "file": str(rel)}, indent=2) + "\n")
        for _ in range(3):
            try:
                os.rename(tmp, final)  # fails while final exists and holds files
                return final / rel
            except OSError:
                pass
            if _same_export(_read_manifest(final), manifest):
                return final / rel  # published by a concurrent run; this copy is removed below
            aside = final.with_name(f".{final.name}.old.{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                continue
            shutil.rmtree(aside, ignore_errors=True)
        raise OSError(f"cannot publish the export {final}: the folder keeps being replaced")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def require(package: str):
    """Import an optional package, or fail in one line naming the requirements file that installs it.

    Raises:
        ImportError: ``package`` is not installed (``pip install -r <file>`` named).
    """
    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise ImportError(
            f"{package} is not installed; it is an optional extra: pip install -r {EXTRAS[package]}"
        ) from e


def register_backend(name: str, precisions: tuple[str, ...] = TORCH_PRECISIONS, exported: bool = False):
    """Decorator: register ``builder(model, example, precision, device, options) -> Runner`` under ``name``,
    accepting ``precisions``; ``exported`` backends get parity checks in benchmark records."""

    def deco(fn):
        BACKENDS[name], BACKEND_PRECISIONS[name] = fn, tuple(precisions)
        if exported:
            EXPORTED.add(name)
        return fn

    return deco


def _out(y) -> torch.Tensor:
    return y["out"] if isinstance(y, dict) else y


def _torch_runner(model: nn.Module, precision: str, device: torch.device, memory_format=None) -> Runner:
    @torch.no_grad()
    def run(x: torch.Tensor) -> torch.Tensor:
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        with autocast(precision, device):
            return _out(model(x))

    return run


@register_backend("eager")
def eager(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None) -> Runner:
    """The module as is."""
    return _torch_runner(model.eval(), precision, device)


@register_backend("channels_last")
def channels_last(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None):
    """Weights and input in ``torch.channels_last`` (NHWC)."""
    model = model.eval().to(memory_format=torch.channels_last)
    return _torch_runner(model, precision, device, memory_format=torch.channels_last)


@register_backend("compile")
def compiled(model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options=None) -> Runner:
    """``torch.compile`` (default mode, Inductor); the first (warm-up) call compiles."""
    return _torch_runner(torch.compile(model.eval()), precision, device)


class _OutOnly(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return _out(self.model(x))


def size_multiple(model: nn.Module) -> int:
    """The multiple of H and W an exported graph of ``model`` needs: the model's ``stride`` (int) or 1."""
    s = getattr(model, "stride", 1)
    return int(s) if isinstance(s, int) and s > 0 else 1


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad float[N, C, H, W] at the bottom/right to multiples of ``multiple`` (as smp/ESPNet do inside)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph)) if (ph or pw) else x


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path) -> Path:
    """Export ``model``'s ``"out"`` logits to ONNX (opset 17, input ``x``, output ``out``, dynamic N, H, W).

    The TorchScript exporter (``torch.onnx.export(dynamo=False)``) is used: on torch 2.14 it exports smp
    models and HRNetV2 with symbolic H, W; the dynamo exporter needs the extra ``onnxscript`` package.
    The example is padded to :func:`size_multiple`, so the traced graph holds no padding; inputs must be
    padded the same way (:func:`pad_to_multiple`). The model is left in eval mode.

    Args:
        model: segbench model (its ``forward`` returns a dict with ``"out"`` or a tensor).
        example: float32[N, 3, H, W] input used for tracing (values irrelevant).
        path: the ``.onnx`` file to write (parent created).

    Raises:
        ImportError: ``onnx`` is not installed (names ``requirements-onnx.txt``).
    """
    require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _OutOnly(model).eval()  # export restores the wrapper's mode on exit: eval keeps the model in eval
    dims = {0: "N", 2: "H", 3: "W"}
    x = pad_to_multiple(example.detach().float().cpu(), size_multiple(model))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape arithmetic traced on aligned sizes
        torch.onnx.export(
            wrapper.cpu(),
            (x,),
            str(path),
            input_names=["x"],
            output_names=["out"],
            dynamic_axes={"x": dims, "out": dims},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return path


def _padded_runner(call: Callable, multiple: int, device: torch.device) -> Runner:
    """Runner around ``call(numpy float32[N,3,H',W']) -> numpy logits``: pads to ``multiple``, crops back."""

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xp = pad_to_multiple(x.detach().float().cpu(), multiple).contiguous()
        y = torch.from_numpy(call(xp.numpy()))
        return y[..., : y.shape[-2] * h // xp.shape[-2], : y.shape[-1] * w // xp.shape[-1]].to(device)

    return run


@register_backend("onnxruntime", precisions=("32-true",), exported=True)
def onnxruntime(
    model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options: BackendOptions | None = None
) -> Runner:
    """Export to ONNX (:func:`export_onnx`) and run with ONNX Runtime (CPU or CUDA execution provider).

    The timed call includes the tensor -> numpy -> tensor copies and the padding to ``stride``.

    Raises:
        ImportError: onnxruntime/onnx not installed (names ``requirements-onnx.txt``).
    """
    options = options or BackendOptions()
    with options.exported(
        "onnxruntime", precision, example, lambda d: export_onnx(model, example, d / "model.onnx")
    ) as path:
        return onnxruntime_runner(path, size_multiple(model), device, options.threads)


def onnxruntime_runner(path: str | Path, multiple: int, device: torch.device, threads: int | None = None) -> Runner:
    """Runner of an exported ``.onnx`` file (:func:`export_onnx`) in an ONNX Runtime session with ``threads``
    intra-op threads (default ``torch.get_num_threads()``); inputs are padded to ``multiple``.

    Raises:
        ImportError: onnxruntime not installed (names ``requirements-onnx.txt``).
    """
    ort = require("onnxruntime")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    session = ort.InferenceSession(str(path), opts, providers=providers)
    return _padded_runner(lambda a: session.run(["out"], {"x": a})[0], multiple, device)


OV_HINTS = {"32-true": "f32", "bf16-mixed": "bf16", "int8": "f32"}  # int8: layers left unquantised run in f32


def openvino_capabilities() -> list[str]:
    """``OPTIMIZATION_CAPABILITIES`` of OpenVINO's CPU device (e.g. ``['FP32', 'INT8', 'BF16', ...]``)."""
    ov = require("openvino")
    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


#: ``calibration.nncf`` keys -> how the config value becomes the ``nncf.quantize`` argument (None: as is)
NNCF_OPTIONS: dict[str, Callable | None] = {
    "preset": lambda nncf, v: nncf.QuantizationPreset(str(v).lower()),  # performance | mixed
    "target_device": lambda nncf, v: nncf.TargetDevice[str(v).upper()],  # ANY | CPU | CPU_SPR | GPU | NPU
    "model_type": lambda nncf, v: nncf.ModelType(str(v).lower()),  # transformer
    "ignored_scope": lambda nncf, v: nncf.IgnoredScope(**dict(v)),  # {names, patterns, types}: kept in float
    "fast_bias_correction": None,  # false: the full bias correction (slower, often closer to fp32)
}


def nncf_options(options: Mapping, nncf=None) -> dict:
    """``calibration.nncf`` (plain values) as ``nncf.quantize`` keyword arguments (enums, ``IgnoredScope``);
    ``nncf`` None only validates the keys.

    Raises:
        ValueError: an unknown key (the valid ones listed).
    """
    bad = sorted(set(options) - set(NNCF_OPTIONS))
    if bad:
        raise ValueError(f"calibration.nncf: unknown option(s) {bad}; valid: {sorted(NNCF_OPTIONS)}")
    if nncf is None:
        return dict(options)
    return {k: (v if NNCF_OPTIONS[k] is None else NNCF_OPTIONS[k](nncf, v)) for k, v in options.items()}


def first_and_last_convolution(ov_model) -> list[str]:
    """Friendly names of the first and the last (Group)Convolution of an ``openvino.Model`` in topological order:
    the stem that sees the image and the classifier that writes the logits."""
    convs = [o.get_friendly_name() for o in ov_model.get_ordered_ops() if o.get_type_name().endswith("Convolution")]
    return sorted({convs[0], convs[-1]}) if convs else []


def quantize_int8(
    ov_model,
    images: Iterable[torch.Tensor],
    multiple: int = 1,
    options: Mapping | None = None,
    float_first_last: bool = False,
):
    """NNCF post-training quantisation (``nncf.quantize``, its default preset unless ``options`` say) of an
    OpenVINO model.

    ``float_first_last`` keeps the first and last convolution (:func:`first_and_last_convolution`) in float, added
    to any ``ignored_scope``: the usual mixed-precision rule for CNNs (DoReFa-Net, Zhou et al. 2016, and XNOR-Net,
    Rastegari et al. 2016, leave the first and last layer unquantised), as the stem sees the image's full range and
    the classifier decides each label.

    Args:
        ov_model: ``openvino.Model`` (fp32).
        images: calibration images, each float32[1, 3, H, W] normalised as the model's input; all are used
            (``subset_size`` = their number); padded to ``multiple``.
        options: ``calibration.nncf`` (:data:`NNCF_OPTIONS`), e.g. ``{"preset": "mixed",
            "ignored_scope": {"types": ["Softmax"]}}``.
        float_first_last: keep the first and last (Group)Convolution in float.

    Returns:
        the quantised ``openvino.Model`` (int8 weights and activations where NNCF places quantisers).

    Raises:
        ImportError: nncf is not installed (names ``requirements-openvino.txt``).
        ValueError: no calibration image; an unknown option.
    """
    nncf = require("nncf")
    kwargs = nncf_options(options or {}, nncf)
    if float_first_last:
        scope = kwargs.get("ignored_scope") or nncf.IgnoredScope()
        kwargs["ignored_scope"] = nncf.IgnoredScope(
            names=[*scope.names, *first_and_last_convolution(ov_model)],
            patterns=list(scope.patterns),
            types=list(scope.types),
            subgraphs=list(scope.subgraphs),
            validate=scope.validate,
        )
    data = [pad_to_multiple(x.detach().float().cpu(), multiple).numpy() for x in images]
    if not data:
        raise ValueError("precision=int8: no calibration image (calibration.images must be >= 1)")
    return nncf.quantize(ov_model, nncf.Dataset(data), subset_size=len(data), **kwargs)


def export_openvino(
    model: nn.Module,
    example: torch.Tensor,
    precision: str,
    options: BackendOptions | None = None,
    folder: str | Path | None = None,
) -> Path:
    """ONNX export (:func:`export_onnx`) converted to OpenVINO IR (``openvino.convert_model``), quantised to
    int8 with NNCF when ``precision == "int8"``; saved with fp32 weights (no fp16 compression) to
    ``<folder>/openvino_<fp32|int8>/model.xml`` (+ ``.bin``). bf16 uses the fp32 IR (the precision is a
    compile-time hint). Returns the ``.xml`` path.

    Args:
        model: segbench model.
        example: float32[N, 3, H, W] tracing input.
        precision: ``32-true``, ``bf16-mixed`` or ``int8`` (aliases accepted).
        options: calibration and NNCF options (int8).
        folder: where the files go (default ``options.folder``); a ``model.onnx`` already there is reused.

    Raises:
        ImportError: openvino (or nncf for int8, onnx) not installed (the requirements file named).
        ValueError: int8 without ``options.calibration``; no folder given.
    """
    ov = require("openvino")
    precision = canonical_precision(precision, quantized=True)
    options = options or BackendOptions()
    folder = folder if folder is not None else options.folder
    if folder is None:
        raise ValueError("export_openvino needs a folder (folder= or options.folder)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / "model.onnx"
    if not onnx_path.is_file():
        export_onnx(model, example, onnx_path)
    ov_model = ov.convert_model(str(onnx_path))
    kind = "int8" if precision == "int8" else "fp32"
    if kind == "int8":
        if options.calibration is None:
            raise ValueError("precision=int8 needs calibration images (options.calibration)")
        ov_model = quantize_int8(
            ov_model, options.calibration(), size_multiple(model), options.quantize, options.float_first_last
        )
    xml = folder / f"openvino_{kind}" / "model.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    return xml


@register_backend("openvino", precisions=("32-true", "bf16-mixed", "int8"), exported=True)
def openvino(
    model: nn.Module, example: torch.Tensor, precision: str, device: torch.device, options: BackendOptions | None = None
) -> Runner:
    """OpenVINO CPU runtime on the exported IR (:func:`export_openvino`): ``PERFORMANCE_HINT=LATENCY``,
    ``INFERENCE_NUM_THREADS`` = the torch thread count, ``INFERENCE_PRECISION_HINT`` f32 (fp32, int8) or bf16.

    Raises:
        ImportError: openvino/nncf/onnx not installed (names ``requirements-openvino.txt``).
        ValueError: ``device`` is not the CPU; bf16 on a CPU without BF16 (its capabilities listed).
    """
    if device.type != "cpu":
        raise ValueError(f"backend=openvino runs on the CPU only, got device={device}")
    check_openvino_precision(precision)
    options = options or BackendOptions()
    write = lambda d: export_openvino(model, example, precision, options, folder=d)
    with options.exported("openvino", precision, example, write) as xml:
        return openvino_runner(xml, precision, size_multiple(model), options.threads)


def check_openvino_precision(precision: str) -> None:
    """Raise ValueError when ``precision`` is bf16 and OpenVINO's CPU device lacks BF16 (capabilities listed)."""
    if canonical_precision(precision, quantized=True) == "bf16-mixed" and "BF16" not in (
        caps := openvino_capabilities()
    ):
        raise ValueError(f"precision=bf16-mixed with backend=openvino needs a CPU with BF16; this one has {caps}")


def openvino_runner(xml: str | Path, precision: str, multiple: int, threads: int | None = None) -> Runner:
    """Runner of an OpenVINO IR compiled for the CPU (``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_NUM_THREADS``
    = ``threads`` or the torch thread count, ``INFERENCE_PRECISION_HINT`` from :data:`OV_HINTS`); inputs are
    padded to ``multiple``.

    Raises:
        ImportError: openvino not installed (names ``requirements-openvino.txt``).
    """
    ov = require("openvino")
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": OV_HINTS[canonical_precision(precision, quantized=True)],
    }
    request = ov.Core().compile_model(str(xml), "CPU", config).create_infer_request()
    return _padded_runner(lambda a: request.infer({0: a})[0].copy(), multiple, torch.device("cpu"))


def check_precision(backend: str, precision) -> str:
    """The canonical name of ``precision`` (:func:`core.precision.canonical_precision`; ``int8`` allowed) when
    ``backend`` declares it.

    Raises:
        ValueError: unknown backend or precision, or one the backend does not declare (valid choices named).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {sorted(BACKENDS)}")
    name = canonical_precision(precision, quantized=True)
    if name not in BACKEND_PRECISIONS[backend]:
        raise ValueError(f"backend={backend} supports precision {list(BACKEND_PRECISIONS[backend])}, got {precision!r}")
    return name


def build_runner(
    model: nn.Module,
    example: torch.Tensor,
    backend: str,
    precision: str,
    device: torch.device,
    options: BackendOptions | None = None,
) -> Runner:
    """Runner for ``backend`` and ``precision``.

    Raises:
        ValueError: unknown backend or precision, or a precision the backend does not support (valid names
            listed).
        ImportError: the backend's optional package is missing (the requirements file named).
    """
    precision = check_precision(backend, precision)
    return BACKENDS[backend](model, example, precision, device, options)


class BackendModule(nn.Module):
    """A runner as a segbench model (``forward(x) -> {"out": logits}``), so the inference engine
    (``inference.infer``: whole/slide/scales/flip) runs any backend.

    Args:
        runner: ``run(float32[N,3,H,W]) -> float[N,K,h,w]``.
        source: the module the runner was built from (its ``eval_scales``, if any, are kept).
    """

    output_names = ("out",)

    def __init__(self, runner: Runner, source: nn.Module | None = None):
        super().__init__()
        self.runner = runner
        self.eval_scales = getattr(source, "eval_scales", None)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.runner(x).float()}


def backend_module(model: nn.Module, spec: str, cfg, device: torch.device) -> BackendModule:
    """``model`` run by the backend ``spec`` = ``NAME[:PRECISION]`` (precision default ``32-true``) as a segbench model,
    for predict.py. int8 calibrates on ``calibration.images`` images of ``calibration.split`` of ``cfg.dataset``
    (``config/benchmark.yaml``); the export is kept in the run folder of a trained run (reused by the next call,
    :meth:`BackendOptions.exported`), else it goes to a temporary folder removed once loaded.

    Raises:
        ValueError: unknown backend/precision (valid names listed); ImportError: the extra is missing.
    """
    from omegaconf import OmegaConf

    name, _, precision = spec.partition(":")
    precision = check_precision(name, precision or "32-true")
    c = OmegaConf.load(Path(__file__).resolve().parents[1] / "config" / "benchmark.yaml").calibration
    options = BackendOptions.from_config(cfg, c)
    example = torch.randn(1, 3, 64, 64, device=device)
    return BackendModule(build_runner(model.eval().to(device), example, name, precision, device, options), model)
