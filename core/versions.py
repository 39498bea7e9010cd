"""What code a figure was measured with: installed package versions and the git commit of the source tree."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the libraries whose versions a training summary states
TRAINING_PACKAGES = (
    "torch",
    "torchvision",
    "pytorch-lightning",
    "torchmetrics",
    "segmentation-models-pytorch",
    "timm",
    "hydra-core",
    "numpy",
)
#: torch and the export runtimes (ONNX, ONNX Runtime, OpenVINO, NNCF)
EXPORT_PACKAGES = ("torch", "onnx", "onnxruntime", "openvino", "nncf")


def package_versions(names=TRAINING_PACKAGES, python: bool = False, keep_missing: bool = False) -> dict:
    """Installed versions of the distributions ``names``.

    Args:
        names: distribution names (PyPI spelling).
        python: also ``"python": platform.python_version()`` first.
        keep_missing: a missing distribution maps to None (else it is left out).

    Returns:
        ``{name: version}``.
    """
    out = {"python": platform.python_version()} if python else {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            if keep_missing:
                out[name] = None
    return out


def git_info(repo: Path = REPO) -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the source tree (tracked changes or untracked
    files count as dirty)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        return {"commit": sha, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def commit_label(info: dict | None) -> str:
    """``git_info()`` as a results record states it: the short sha, ``+dirty`` with uncommitted changes, e.g.
    ``4c20afb+dirty``; empty when unknown."""
    if not info or not info.get("commit"):
        return ""
    return f"{info['commit'][:7]}{'+dirty' if info.get('dirty') else ''}"
