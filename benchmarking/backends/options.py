"""``BackendOptions``: what the exported backends need beyond the model (export folder, int8 calibration and NNCF
options, threads), read from the benchmark config (:meth:`BackendOptions.from_config`), and where their files go
(:meth:`BackendOptions.exported`: an explicit folder, the run's cached export, or a temporary folder).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarking.backends.accuracy_control import AccuracyControl
from benchmarking.backends.cache import EXPORT_FORMAT, ONNX_OPSET, cached_export
from core.schema import CalibrationConfig, checked
from core.versions import EXPORT_PACKAGES, package_versions


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
            ``config/benchmark.yaml``; see :func:`benchmarking.backends.int8.nncf_options`).
        float_first_last: int8 keeps the first and last convolution in float (``calibration.float_first_last``;
            :func:`quantize_int8`).
        calibration_note: the calibration in words, for records and export manifests.
        accuracy_control: int8 by ``nncf.quantize_with_accuracy_control`` on held-out frames
            (``calibration.accuracy_control``); None: ``nncf.quantize``.
        report: filled by the backend while it builds its runner: ``runtime_properties`` (what the compiled
            model reports, :func:`benchmarking.backends.openvino_runtime.compiled_properties`) and, for int8 with
            accuracy control, ``accuracy_control`` (choices and measured drop); benchmark records keep both.
    """

    folder: Path | None = None
    calibration: Callable[[], Iterable[torch.Tensor]] | None = None
    threads: int | None = None
    quantize: dict = field(default_factory=dict)
    float_first_last: bool = False
    calibration_note: str = ""
    cache_root: Path | None = None
    source: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    accuracy_control: AccuracyControl | None = None

    @classmethod
    def from_config(cls, cfg, calibration: Mapping | None = None, **kwargs) -> BackendOptions:
        """Options whose int8 calibration is ``calibration`` (default ``cfg.calibration``; a complete node, typed by
        :class:`core.schema.CalibrationConfig`): ``images`` images of ``split`` of ``cfg.dataset`` through the test
        pipeline (:func:`benchmarking.parity.split_images`), quantised with the ``nncf`` options, or with
        ``accuracy_control`` enabled by ``nncf.quantize_with_accuracy_control`` validated on
        ``accuracy_control.images`` other frames of ``split`` (:func:`benchmarking.parity.held_out_samples`).
        ``kwargs``: ``folder``, ``threads``.

        Without ``folder``, a model loaded from a run folder (``cfg.loaded_from.run_dir``, set by
        :func:`inference.loading.load_for_inference`) keeps its exports in the run's ``export/`` folder
        (``cache_root``), described by its weights file and model config (``source``).

        Raises:
            ValueError: a ``calibration`` key that is unknown, missing, of the wrong type or out of its range (one
                line naming the key), before anything is exported.
        """
        from omegaconf import OmegaConf

        from benchmarking.parity import held_out_samples, split_images

        c = checked(
            calibration if calibration is not None else cfg.get("calibration"), CalibrationConfig, "calibration"
        )
        split, n, first_last, quantize = c.split, c.images, c.float_first_last, c.nncf.given()
        d = cfg.get("dataset") or {}
        ac = AccuracyControl.from_options(
            c.accuracy_control,
            split=split,
            num_classes=int(d.get("num_classes") or 0),
            ignore_index=int(d.get("ignore_index", 255)),
        )
        if ac is not None:
            ac.samples = lambda: held_out_samples(cfg, split, n, ac.images)
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
            calibration_note=f"{split} ({n} images{words}, {ac.note() if ac else 'nncf.quantize'})",
            accuracy_control=ac,
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
          ``example``; precision ``int8-ac`` for int8 with accuracy control) is reused when its ``manifest.json`` equals :meth:`manifest`; otherwise written into a
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
            # int8 with accuracy control keeps its own folder: the plain int8 export beside it is not replaced
            name = "int8-ac" if precision == "int8" and self.accuracy_control is not None else precision
            final = Path(self.cache_root) / backend_export_name(backend, name, f"{w}x{h}")
            yield cached_export(final, self.manifest(backend, precision, example), write)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="segbench_export_"))
            try:
                yield write(tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
