"""Optional packages and the ``requirements-<extra>.txt`` file that installs each (:data:`EXTRAS`); :func:`require`
imports one or fails in one line naming that file."""

from __future__ import annotations

import importlib

#: optional package -> the requirements file that installs it
EXTRAS = {
    "onnx": "requirements-onnx.txt",
    "onnxruntime": "requirements-onnx.txt",
    "openvino": "requirements-openvino.txt",
    "nncf": "requirements-openvino.txt",
    "mlflow": "requirements-tracking.txt",
    "wandb": "requirements-tracking.txt",
    "optuna": "requirements-tracking.txt",
    "mmseg": "requirements-mmseg.txt",
}


def require(package: str, what: str | None = None):
    """Import an optional package of :data:`EXTRAS`, or fail in one line naming its requirements file.

    Args:
        package: import name, e.g. ``"openvino"``.
        what: the feature that needs it, e.g. ``"logger=mlflow"`` (named in the error).

    Returns:
        the imported module.

    Raises:
        ModuleNotFoundError: ``package`` is not installed, e.g. ``openvino is not installed; it is an optional
            extra: pip install -r requirements-openvino.txt`` or ``logger=mlflow needs the package 'mlflow', an
            optional extra: pip install -r requirements-tracking.txt``.
        KeyError: ``package`` is not one of :data:`EXTRAS`.
    """
    extra = EXTRAS[package]
    try:
        return importlib.import_module(package)
    except ImportError as e:
        if what:
            msg = f"{what} needs the package {package!r}, an optional extra: pip install -r {extra}"
        else:
            msg = f"{package} is not installed; it is an optional extra: pip install -r {extra}"
        raise ModuleNotFoundError(msg) from e
