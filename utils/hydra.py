"""OmegaConf resolvers used by ``config/`` (registered on import of any entry point or test).

* ``${repo_path:data}``  -> absolute path of ``data`` inside the repository (repo-relative defaults).
* ``${run_name:EXP,OVERRIDES}`` -> ``EXP`` or ``EXP__OVERRIDES``: the run folder's name part.
* ``${lightning_precision:VALUE}`` -> the Lightning precision name of ``VALUE`` (``bf16`` -> ``bf16-mixed``, see
  :mod:`utils.precision`).
* ``${sqlite_uri:PATH}`` -> ``sqlite:///<absolute PATH>``, creating PATH's folder (SQLite creates no folders):
  the MLflow and Optuna stores under LOGDIR.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

from utils.precision import canonical_precision

REPO_ROOT = Path(__file__).resolve().parent.parent


MAX_RUN_NAME = 160  # characters; file systems allow 255 per path component


def _run_name(experiment, overrides=None) -> str:
    """``EXP`` or ``EXP__OVERRIDES``; names longer than 160 characters are cut and end in an 8-hex hash of the
    full override string (so distinct runs stay distinct and every path component stays < 255 bytes)."""
    overrides = str(overrides or "").replace("/", "_")
    name = f"{experiment}__{overrides}" if overrides else str(experiment)
    if len(name) > MAX_RUN_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_RUN_NAME - 10]}__{digest}"
    return name


def _sqlite_uri(path) -> str:
    """``sqlite:///<absolute path>`` of ``path`` (relative to the current directory); makes its parent folder."""
    path = Path(str(path)).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def register_resolvers() -> None:
    """Register the segbench resolvers once (idempotent)."""
    if not OmegaConf.has_resolver("repo_path"):
        OmegaConf.register_new_resolver("repo_path", lambda rel="": str(REPO_ROOT / str(rel)))
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", _run_name)
    if not OmegaConf.has_resolver("lightning_precision"):
        OmegaConf.register_new_resolver("lightning_precision", canonical_precision)
    if not OmegaConf.has_resolver("sqlite_uri"):
        OmegaConf.register_new_resolver("sqlite_uri", _sqlite_uri)


register_resolvers()
