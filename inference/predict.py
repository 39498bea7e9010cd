"""Predict label maps for photos of any size (predict.py): label PNG, overlay with legend, JSON record.

Memory: the image is normalised in place and stays in host memory; in ``slide`` mode only one batch of
windows at a time goes to the model's device. Slide at scale 1.0 (``auto`` mode for images above
``max_whole_pixels``) streams labels row band by row band (:func:`inference.engine.predict_labels_streaming`):
about ``4 * H * W * 3 + 8 * H * W`` bytes plus (1, K, crop_h, W) float32 per view and the model's
activations for one window batch. Other settings (several scales, whole mode) hold the full
(1, K, H, W) float32 probability accumulator on ``accumulate_on`` (default: host memory).
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from core.precision import autocast, canonical_precision
from core.schema import EngineConfig, checked_keys
from datasets.image_io import IMAGE_EXTENSIONS, read_image
from datasets.transforms import build_transforms
from inference.engine import predict_labels, predict_labels_streaming, streams_labels
from inference.settings import InferenceSettings, keep_ratio_size
from inference.uncertainty import entropy_png
from inference.visualize import class_fractions, overlay_with_legend
from metrics.calibration import normalized_entropy

PRESETS_DIR = Path(__file__).resolve().parents[1] / "config" / "inference"


def load_preset(name: str | None) -> dict:
    """The inference settings of preset ``name`` (``config/inference/<name>.yaml``); ``{}`` for None.

    Keys are :class:`InferenceSettings` fields (null values keep the dataset's ``test`` setting).

    Raises:
        ValueError: unknown preset (the available ones are listed), or an unknown key or a value of the wrong type
            (:class:`core.schema.EngineConfig`; key named).
    """
    if not name:
        return {}
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(
            f"unknown inference preset {name!r}; available: {sorted(p.stem for p in PRESETS_DIR.glob('*.yaml'))}"
        )
    return {k: v for k, v in checked_keys(OmegaConf.load(path), EngineConfig, str(path)).items() if v is not None}


def list_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively for :data:`IMAGE_EXTENSIONS`).

    Raises:
        FileNotFoundError: an input does not exist, or no image was found (inputs named).
    """
    files: list[Path] = []
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"input {p} does not exist")
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {[str(p) for p in inputs]}")
    return files


def read_rgb(path: Path) -> np.ndarray:
    """uint8[H, W, 3] RGB pixels of ``path`` (:func:`datasets.image_io.read_image`: every PIL mode, EXIF
    orientation, 16-bit grey scaled).

    Raises:
        datasets.image_io.ImageReadError (a ValueError): unreadable file (named).
    """
    return read_image(path)


@functools.lru_cache(maxsize=8)
def _normalize_lut(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """float32[3, 256]: the dataset's test-time normalisation of every uint8 value per channel."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    return build_transforms(None, mean, std)(image=ramp)["image"][:, :, 0].numpy().copy()


def normalize(image: np.ndarray, mean, std) -> torch.Tensor:
    """uint8[H, W, 3] -> float32[1, 3, H, W] ``(x - 255 mean) / (255 std)`` (0..1-scale statistics).

    The values are those of the dataset's test-time normalisation (:func:`datasets.transforms.build_transforms`,
    albumentations ``Normalize``), tabulated once for the 256 uint8 values per channel, so a photo gives bit for
    bit the input validation.py gives the same image; no temporary beyond the output and one uint8 plane.
    """
    lut = _normalize_lut(tuple(float(m) for m in mean), tuple(float(s) for s in std))
    out = np.empty((1, 3, *image.shape[:2]), dtype=np.float32)
    for c in range(3):
        np.take(lut[c], np.ascontiguousarray(image[..., c]), out=out[0, c])
    return torch.from_numpy(out)


def settings_for(
    base: InferenceSettings, mode: str, h: int, w: int, max_whole_pixels: int, crop_size: Sequence[int]
) -> InferenceSettings:
    """The settings for an H x W image: ``mode`` ``whole``/``slide`` as given; ``auto`` keeps ``base`` up to
    ``max_whole_pixels`` pixels (counted at the test scale of ``base.resize``) and otherwise slides
    ``base.crop_size`` (or ``crop_size``) windows with ``base.stride`` (or 2/3 of the window)."""
    if base.resize is not None:
        h, w = keep_ratio_size(h, w, base.resize)
    if mode == "auto" and h * w <= max_whole_pixels:
        return base
    if mode == "whole":
        return InferenceSettings(**{**base.to_dict(), "mode": "whole"})
    crop = base.crop_size or tuple(int(c) for c in crop_size)
    stride = base.stride or tuple(max(1, (2 * c) // 3) for c in crop)
    return InferenceSettings(**{**base.to_dict(), "mode": "slide", "crop_size": crop, "stride": stride})


@dataclass
class Predictor:
    """A model with its config, ready to label photos.

    Args:
        model: segbench model (eval mode is set), on ``device``.
        cfg: resolved config (``dataset.mean/std/num_classes/class_names/palette``, ``precision``,
            ``channels_last``).
        settings: base :class:`InferenceSettings` (``dataset.test`` + command-line overrides).
        mode: ``auto`` | ``whole`` | ``slide`` (see :func:`settings_for`).
        max_whole_pixels: ``auto`` switches to slide above this many pixels.
        uncertainty: :meth:`predict_file` also writes ``<stem>_uncertainty.png``, the per-pixel normalised entropy
            ``H(p) / log K`` in [0, 1] of the merged probabilities (:func:`metrics.calibration.normalized_entropy`)
            through a colour map with a colour bar (:func:`inference.uncertainty.entropy_png`), at the photo's size.
            The entropy is computed band by band as the engine hands over probabilities; it costs one float32
            (H, W) map.
    """

    model: torch.nn.Module
    cfg: DictConfig
    settings: InferenceSettings
    device: torch.device
    mode: str = "auto"
    max_whole_pixels: int = 2048 * 1024
    uncertainty: bool = False

    def __post_init__(self):
        self.model = self.model.eval().to(self.device)
        if self.cfg.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)

    def labels(self, image: np.ndarray) -> tuple[np.ndarray, InferenceSettings]:
        """uint8[H, W, 3] RGB -> (uint8[H, W] trainIds, the settings used)."""
        labels, s, _ = self.labels_and_entropy(image, entropy=False)
        return labels, s

    @torch.no_grad()
    def labels_and_entropy(
        self, image: np.ndarray, entropy: bool = True
    ) -> tuple[np.ndarray, InferenceSettings, np.ndarray | None]:
        """uint8[H, W, 3] RGB -> (uint8[H, W] trainIds, the settings used, float32[H, W] normalised entropy in
        [0, 1] of the merged probabilities, or None when ``entropy`` is False)."""
        d = self.cfg.dataset
        h, w = image.shape[:2]
        s = settings_for(self.settings, self.mode, h, w, self.max_whole_pixels, d.get("crop_size") or (512, 512))
        x = normalize(image, d.mean, d.std)
        if self.cfg.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        ent = torch.empty((h, w), dtype=torch.float32) if entropy else None

        def on_probs(probs: torch.Tensor, r0: int, r1: int) -> None:
            ent[r0:r1] = normalized_entropy(probs)[0].cpu()

        cb = on_probs if entropy else None
        with autocast(self.cfg.get("precision", "32-true"), self.device):
            if streams_labels(self.model, s):  # slide at scale 1: no full-size probability buffer
                lab = predict_labels_streaming(self.model, x, s, on_probs=cb)[0]
            else:
                lab = predict_labels(self.model, x, s, on_probs=cb)[0]
        del x
        lab = lab.to(torch.uint8 if d.num_classes <= 256 else torch.int32).cpu().numpy()
        return lab, s, None if ent is None else ent.numpy()

    def predict_file(self, path: Path, out_dir: Path, alpha: float = 0.5) -> dict:
        """Label ``path``; write ``<stem>_label.png`` (trainIds), ``<stem>_overlay.png`` (with legend) and
        ``<stem>.json`` (size, settings, per-class pixel fractions, with ``uncertainty`` ``<stem>_uncertainty.png``
        and ``mean_entropy`` (mean normalised entropy), timing in s (wall; ``inference_cpu``: the process's
        CPU seconds over all threads), peak memory in MiB) into
        ``out_dir``; returns the JSON record. ``peak_rss_mib`` is the process peak so far (``getrusage``; it
        never decreases, so run one image per process to measure one image), ``peak_cuda_mib`` the
        image's peak CUDA allocation."""
        d = self.cfg.dataset
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        image = read_rgb(path)
        t1, c1 = time.perf_counter(), time.process_time()
        labels, s, entropy = self.labels_and_entropy(image, entropy=self.uncertainty)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t2, c2 = time.perf_counter(), time.process_time()
        rss_inference = peak_rss_mib()
        stem = path.stem
        Image.fromarray(labels).save(out_dir / f"{stem}_label.png")
        names = [str(n) for n in d.class_names]
        overlay_with_legend(image, labels, d.palette, names, alpha=alpha).save(
            out_dir / f"{stem}_overlay.png", compress_level=1
        )  # fast
        if entropy is not None:
            entropy_png(entropy, out_dir / f"{stem}_uncertainty.png")
        frac = class_fractions(labels, d.num_classes)
        t3 = time.perf_counter()
        order = np.argsort(-frac, kind="stable")
        record = {
            "image": str(path),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "label_png": f"{stem}_label.png",
            "overlay_png": f"{stem}_overlay.png",
            "inference": s.to_dict(),
            "device": str(self.device),
            "precision": canonical_precision(self.cfg.get("precision", "32-true")),
            "class_fractions": {names[int(k)]: round(float(frac[k]), 6) for k in order if frac[k] > 0},
            **(
                {"uncertainty_png": f"{stem}_uncertainty.png", "mean_entropy": round(float(entropy.mean()), 6)}
                if entropy is not None
                else {}
            ),
            "timing_s": {
                "read": round(t1 - t0, 3),
                "inference": round(t2 - t1, 3),
                "inference_cpu": round(c2 - c1, 3),  # CPU seconds of this process, all threads
                "write": round(t3 - t2, 3),
                "total": round(t3 - t0, 3),
            },
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "peak_rss_mib_after_inference": round(rss_inference, 1),
        }
        if self.device.type == "cuda":
            record["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=2))
        return record


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``getrusage``; Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10
