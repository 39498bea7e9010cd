"""Console scripts of ``pip install -e .``: ``segbench-train``, ``segbench-validate``, ``segbench-benchmark``,
``segbench-predict`` run ``main.py``, ``validation.py``, ``benchmark.py`` and ``predict.py`` with the same
arguments.

The project's top-level packages keep the names its layout promises (``datasets``, ``models``, ``core``,
``metrics``, ...), which PyPI packages also use (HuggingFace ``datasets``). ``python main.py`` finds the project's
own first because the script's folder is ``sys.path[0]``; an editable install's import hook (setuptools >= 64,
PEP 660) comes after ``site-packages`` instead, so each console script first puts the repository at the front of
``sys.path`` (:func:`own_packages_first`) and drops a same-named module imported from elsewhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
#: the project's top-level packages and entry modules
OWN = ("benchmarking", "core", "datasets", "inference", "losses", "metrics", "models", "report", "training")


def own_packages_first() -> None:
    """Make ``import datasets`` (and the other :data:`OWN` names) resolve to this repository's packages."""
    root = str(REPO)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    for name in [*OWN, "main", "validation", "benchmark", "predict"]:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None)
        if module is not None and (origin is None or not Path(origin).resolve().is_relative_to(REPO)):
            for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
                del sys.modules[key]


def train() -> None:
    """``segbench-train ARGS`` = ``python main.py ARGS``."""
    own_packages_first()
    import main

    main.cli(sys.argv[1:])


def validate() -> None:
    """``segbench-validate ARGS`` = ``python validation.py ARGS``."""
    own_packages_first()
    import validation

    sys.exit(validation.entry(sys.argv[1:]))


def benchmark() -> None:
    """``segbench-benchmark ARGS`` = ``python benchmark.py ARGS``."""
    own_packages_first()
    import benchmark as bench

    bench.cli(sys.argv[1:])


def predict() -> None:
    """``segbench-predict ARGS`` = ``python predict.py ARGS``."""
    own_packages_first()
    import predict as pred

    sys.exit(pred.entry(sys.argv[1:]))
