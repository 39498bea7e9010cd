"""core.extras.require: one import path for every optional package, one line naming its requirements file."""

import sys

import pytest

from core.extras import EXTRAS, require


def test_an_installed_extra_is_imported():
    import onnx

    assert require("onnx") is onnx


@pytest.mark.parametrize("package", sorted(EXTRAS))
def test_a_missing_extra_names_its_requirements_file(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` raises ImportError
    with pytest.raises(ModuleNotFoundError) as e:
        require(package)
    assert str(e.value) == f"{package} is not installed; it is an optional extra: pip install -r {EXTRAS[package]}"
    with pytest.raises(ModuleNotFoundError) as e:
        require(package, "logger=x")
    assert (
        str(e.value) == f"logger=x needs the package {package!r}, an optional extra: pip install -r {EXTRAS[package]}"
    )


def test_every_named_file_exists():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert {f for f in EXTRAS.values() if not (root / f).is_file()} == set()
