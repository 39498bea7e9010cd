"""The editable install: console scripts exist and run, and they import the project's own top-level packages even
when a same-named package (e.g. HuggingFace ``datasets``) comes first on ``sys.path``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("segbench-train", "segbench-validate", "segbench-benchmark", "segbench-predict")


def _decoys(root: Path) -> Path:
    """Packages named like the project's that fail loudly when imported."""
    for name in ("datasets", "models", "core", "metrics"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "__init__.py").write_text(f"raise ImportError('decoy {name} imported')\n")
    return root


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{_decoys(tmp_path / 'decoys')}{os.pathsep}{REPO}"}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_console_script_imports_the_projects_packages_past_a_decoy(tmp_path):
    # the decoys really come first: a plain import gets them
    plain = _run("import datasets", tmp_path)
    assert plain.returncode == 1 and "decoy datasets imported" in plain.stderr
    code = (
        "import sys, segbench_cli; segbench_cli.own_packages_first()\n"
        "import datasets, models, core, metrics, inference.loading, validation\n"
        "print(datasets.__file__, models.__file__, core.__file__, metrics.__file__)\n"
        "sys.argv = ['segbench-validate', '--help']; segbench_cli.validate()"
    )
    r = _run(code, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    files = r.stdout.splitlines()[0].split()
    assert [Path(f).parent.parent for f in files] == [REPO] * 4
    assert "usage: validation.py" in r.stdout


def test_console_scripts_are_installed_and_answer_help():
    """`make install` installs the project editable (pip install -e .); each script equals its root script."""
    bin_dir = Path(sys.executable).parent
    for script in SCRIPTS:
        assert (bin_dir / script).is_file(), f"{script} not in {bin_dir}: run `pip install -e .` (make install does)"
    r = subprocess.run([str(bin_dir / "segbench-train"), "--help"], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0 and "main is powered by Hydra" in r.stdout, r.stderr[-2000:]
