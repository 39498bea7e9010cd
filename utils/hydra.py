"""OmegaConf resolvers used by ``config/`` (registered on import of any entry point or test).

* ``${repo_path:data}``  -> absolute path of ``data`` inside the repository (repo-relative defaults).
* ``${run_name:EXP,OVERRIDES}`` -> ``EXP`` or ``EXP__OVERRIDES``: the run folder's name part.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run_name(experiment, overrides=None) -> str:
    overrides = str(overrides or "").replace("/", "_")
    return f"{experiment}__{overrides}" if overrides else str(experiment)


def register_resolvers() -> None:
    """Register the segbench resolvers once (idempotent)."""
    if not OmegaConf.has_resolver("repo_path"):
        OmegaConf.register_new_resolver("repo_path", lambda rel="": str(REPO_ROOT / str(rel)))
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", _run_name)


register_resolvers()
