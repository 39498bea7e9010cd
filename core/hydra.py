"""OmegaConf resolvers used by ``config/`` (registered on import of any entry point or test), and the structured
configs of :mod:`core.schema` (stored in Hydra's ConfigStore by the same import).

* ``${repo_path:data}``  -> absolute path of ``data`` inside the repository (repo-relative defaults).
* ``${run_name:EXP,OVERRIDES}`` -> ``EXP`` or ``EXP__OVERRIDES``: the run folder's name part, made of
  characters every entry point accepts unquoted (:func:`core.run_folder.safe_name`).
* ``${claim_run_dir:PATH}`` -> ``PATH`` created atomically, or ``PATH_1``, ``PATH_2``, ... when it exists
  (:func:`core.run_folder.claim_folder`); the same PATH gives the same folder within one process.
* ``${lightning_precision:VALUE}`` -> the Lightning precision name of ``VALUE`` (``bf16`` -> ``bf16-mixed``, see
  :mod:`core.precision`).
* ``${sqlite_uri:PATH}`` -> ``sqlite:///<absolute PATH>``, creating PATH's folder (SQLite creates no folders):
  the MLflow and Optuna stores under LOGDIR.

``${pretrained_norm:WEIGHTS,ENCODER}`` (the mean/std that encoder weights expect) is registered by
:mod:`models.pretrained`, which knows the weights; the entry points import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

import core.schema  # noqa: F401  (stores the structured configs of config/ in Hydra's ConfigStore)
from core.precision import canonical_precision
from core.run_folder import claim_folder, safe_name

REPO_ROOT = Path(__file__).resolve().parent.parent


MAX_RUN_NAME = 160  # characters; file systems allow 255 per path component


def _run_name(experiment, overrides=None) -> str:
    """``EXP`` or ``EXP__OVERRIDES`` in :func:`core.run_folder.safe_name` characters; names longer than 160
    characters are cut and end in an 8-hex hash of the full override string (so distinct runs stay distinct
    and every path component stays < 255 bytes)."""
    raw = str(overrides or "")
    name = f"{safe_name(experiment)}__{safe_name(raw)}" if raw else safe_name(str(experiment))
    if len(name) > MAX_RUN_NAME:
        digest = hashlib.sha1(f"{experiment}__{raw}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_RUN_NAME - 10]}__{digest}"
    return name


_CLAIMED: dict[str, str] = {}


def _claim_run_dir(path) -> str:
    """Folder ``path`` created atomically (suffixed on collision); cached per path for this process, since
    Hydra resolves ``hydra.run.dir`` more than once."""
    key = str(path)
    if key not in _CLAIMED:
        _CLAIMED[key] = str(claim_folder(key))
    return _CLAIMED[key]


def claimed_here(path) -> bool:
    """True when ``path`` is a folder this process created through ``${claim_run_dir:...}`` (safe to remove when
    the run fails before writing any result; a folder given as ``hydra.run.dir=`` never is)."""
    return str(Path(path).resolve()) in {str(Path(p).resolve()) for p in _CLAIMED.values()}


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
    if not OmegaConf.has_resolver("claim_run_dir"):
        OmegaConf.register_new_resolver("claim_run_dir", _claim_run_dir)
    if not OmegaConf.has_resolver("lightning_precision"):
        OmegaConf.register_new_resolver("lightning_precision", canonical_precision)
    if not OmegaConf.has_resolver("sqlite_uri"):
        OmegaConf.register_new_resolver("sqlite_uri", _sqlite_uri)


register_resolvers()
