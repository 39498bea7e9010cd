"""The project's layers point one way: each package imports only the layers below it (``docs/development.md``).

Every ``import``/``from ... import`` of the project's own packages is checked, also those inside functions (a lazy
import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: package -> layer; a module may import its own package and packages of a lower layer only
LAYERS = {
    "core": 0,
    "datasets": 1,
    "models": 1,
    "losses": 1,
    "metrics": 1,
    "inference": 2,
    "training": 3,
    "benchmarking": 3,
    "report": 3,
    "hydra_plugins": 3,
}
#: entry points: may import every layer
ENTRY = {"main", "validation", "benchmark", "predict", "segbench_cli", "scripts"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level name) of every absolute import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def violations(repo: Path = REPO) -> list[str]:
    """``file:line: A (layer a) imports B (layer b)`` for every import that does not point down."""
    found = []
    for path in sorted(repo.rglob("*.py")):
        rel = path.relative_to(repo)
        owner = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if owner in ENTRY or owner not in LAYERS:
            continue
        for line, name in imports_of(path):
            if name in LAYERS and name != owner and LAYERS[name] >= LAYERS[owner]:
                found.append(f"{rel}:{line}: {owner} (layer {LAYERS[owner]}) imports {name} (layer {LAYERS[name]})")
    return found


def test_every_project_package_has_a_layer():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "docs"}
    assert packages - set(LAYERS) == set(), "give the new package a layer in LAYERS and docs/development.md"


def test_imports_point_down_only():
    assert violations() == []


def test_an_upward_import_is_found(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "bad.py").write_text("def f():\n    from training.train import train  # lazy, still up\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "ok.py").write_text("from core.bad import f\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "sibling.py").write_text("import models.ok\n")
    assert violations(tmp_path) == [
        "core/bad.py:2: core (layer 0) imports training (layer 3)",
        "metrics/sibling.py:1: metrics (layer 1) imports models (layer 1)",
    ]
