"""The record of one measurement before anything is measured (names, the command's settings) and the one-line
text of a failure that a ``status="failed"`` record carries."""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from core.records import BenchmarkRecord
from models.display import describe_model


def _names(cfg: DictConfig, model_choice: str) -> dict:
    name, method = describe_model(cfg.model, model_choice, cfg.get("display"))
    return {
        "name": str(cfg.get("name") or name),
        "method": str(cfg.get("method") or method),
        "model": model_choice,
        "dataset": str(cfg.dataset.name),
    }


def new_record(cfg: DictConfig, model_choice: str, overrides: Sequence[str]) -> BenchmarkRecord:
    """The record of the benchmark config ``cfg``: display name and method (``name``/``method`` of ``cfg``, else
    :func:`models.display.describe_model`), model choice, dataset, ``overrides`` as its ``config``, batch size,
    precision and backend as given."""
    return BenchmarkRecord(
        **_names(cfg, model_choice),
        config=" ".join(overrides),
        batch_size=int(cfg.batch_size),
        precision=str(cfg.precision),
        backend=str(cfg.backend),
    )


def name_from_run(rec: BenchmarkRecord, cfg: DictConfig, model_choice: str) -> None:
    """Set the display name, method, model choice and dataset of ``rec`` from the config of the trained run the
    model came from (``cfg`` merged by :func:`benchmarking.loading.load_model`)."""
    vars(rec).update(_names(cfg, model_choice))


def error_text(e: BaseException, limit: int = 500) -> str:
    """``"<Type>: <first line>"`` of ``e``, cut to ``limit``; Hydra's wrappers of constructor errors are unwrapped."""
    from hydra.errors import InstantiationException

    while isinstance(e, InstantiationException) and (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    msg = str(e).strip()
    return f"{type(e).__name__}: {msg.splitlines()[0] if msg else ''}"[:limit]
