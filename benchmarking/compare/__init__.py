"""``python benchmark.py compare``: many training runs -> one table with run-to-run variance, quality and cost.

Reads every ``summary.json`` under ``root=`` (written by :mod:`training.summary`), the validation.py records
(``validation/*/metrics.json``) and the ok benchmark.py records (``benchmark/*.json``) of the same run folders, and
writes into ``tables=``:

* ``runs.csv``: one row per run (status ``running|finished|failed|killed``, metrics in %, cost, paths);
* ``experiments.csv`` + ``experiments.md``: one row per configuration = the runs of one dataset whose command-line
  overrides are equal once ``seed`` (and keys that do not change the experiment: :data:`NOT_CONFIGURATION`)
  is dropped, or the runs of one dataset with equal values of the ``by=`` keys;
* ``per_class_iou.csv``: mean per-class IoU (%) at each run's best epoch, per configuration;
* plots (PNG + SVG, :mod:`benchmarking.compare_plots`).

**What is averaged** (``select=``): ``best`` (default) the best validation epoch of each run, which is the maximum
over epochs on the split that picked it and so optimistic; ``last`` the last validation epoch; ``test-at-best-val``
the test-split record (validation.py ``split=test``) of the checkpoint of the best validation epoch. Every table
names its split and rule.

**Like for like** (:mod:`benchmarking.like_for_like`): runs of different datasets are never one row; a test figure
enters a mean only with others of the same split, checkpoint, inference mode, scales, flip, resize, precision,
image count and temperature scaling, and a benchmark figure (fps) only with others of the same backend, precision, resolution, batch size,
threads and hardware profile. Each setting found is its own column (or, for the ``test-at-best-val`` statistic, its
own row); of several records of one setting in a run the newest counts.

Statistics use the finished runs of a configuration that have a value (failed, killed and running runs, and runs
without a test record under ``test-at-best-val``, are counted in ``status_counts`` and listed in ``runs.csv``): ``n``,
mean, sample standard deviation (ddof = 1), half-width of the Student-t 95 % interval
``t.ppf(0.975, n - 1) * s / sqrt(n)``, min, max, and the per-run values in seed order (best in bold in the
markdown, as in the MIC-DKFZ Cityscapes tables; for the calibration errors ``metric=ECE|MCE|ECE_scaled|MCE_scaled``,
:data:`metrics.calibration.CALIBRATION`, the lowest is best). With ``baseline=`` each row gets the difference of means to that
configuration and the p-value of Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``). Every output is
written only after all inputs were read, each file atomically.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchmarking.compare.grouping import UnknownKeyError, assign_configurations, check_by_keys, common_overrides
from benchmarking.compare.runs import (
    DESCRIPTIONS,
    LOWER_IS_BETTER,
    METRICS,
    NOT_CONFIGURATION,
    ROBUSTNESS,
    SELECT,
    configuration_overrides,
    parse_override,
    read_runs,
    run_row,
    select_values,
)
from benchmarking.compare.stats import describe, welch_p
from benchmarking.compare.tables import experiments_table, markdown, per_class_table, runs_table
from core.records import atomic_write_text
from core.results import write_results

__all__ = [
    "METRICS",
    "NOT_CONFIGURATION",
    "SELECT",
    "UnknownKeyError",
    "assign_configurations",
    "check_by_keys",
    "common_overrides",
    "compare",
    "configuration_overrides",
    "describe",
    "experiments_table",
    "main",
    "markdown",
    "parse_override",
    "per_class_table",
    "read_runs",
    "run_row",
    "runs_table",
    "select_values",
    "welch_p",
]


def compare(
    root: str | os.PathLike,
    tables: str | os.PathLike,
    by: list[str] | None = None,
    metric: str = "mIoU",
    baseline: str | None = None,
    warn=print,
    select: str = "best",
    record: str | os.PathLike | None = None,
    argv: list[str] | None = None,
    caption: str = "",
) -> list[Path]:
    """Read the runs under ``root`` and write the tables and plots into ``tables`` (module docstring).

    With ``record`` (``results/<name>.yaml``) the experiments table is also written as a results record
    (:mod:`benchmarking.compare.record`; ``argv`` is the compare command line it names, ``caption`` leads its
    caption), so the docs can render it.

    Returns:
        the files written.

    Raises:
        ValueError: unknown ``metric`` or ``select``, ``mPC``/``rPC`` without ``test-at-best-val``, no run summary
            under ``root``, an unknown ``baseline``.
        UnknownKeyError: a ``by`` key no run has.
    """
    from benchmarking.compare.plots import plot_all

    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not known; valid: {list(METRICS)}")
    if metric in ROBUSTNESS and select != "test-at-best-val":
        raise ValueError(
            f"metric={metric} comes from validation.py corruptions=... records on the test split, not from training: "
            "add select=test-at-best-val"
        )
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError(f"root={root} is not a folder")
    rows = read_runs(root, warn)
    if not rows:
        raise ValueError(f"no readable summary.json under {root} (main.py writes one into every run folder)")
    rows = select_values(rows, select, metric)
    assign_configurations(rows, by)
    exp = experiments_table(rows, metric, baseline, select)
    per_class = per_class_table(rows)
    runs = runs_table(rows, metric)
    md = markdown(exp, metric, root, common_overrides(rows) if not by else "")
    if record is not None:
        from benchmarking.compare.record import build_record

        results = build_record(Path(record).stem, exp, rows, metric, argv or [], caption)
    tables = Path(tables)
    tables.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tables, prefix=".compare.") as tmp:
        plots = plot_all(exp, rows, per_class, metric, Path(tmp), SELECT[select], exp.attrs["fps_columns"])
        written = [
            atomic_write_text(tables / "runs.csv", runs.to_csv(index=False)),
            atomic_write_text(tables / "experiments.csv", exp.to_csv(index=False)),
            atomic_write_text(tables / "experiments.md", md),
        ]
        if not per_class.empty:
            written.append(atomic_write_text(tables / "per_class_iou.csv", per_class.to_csv()))
        for p in plots:
            os.replace(p, tables / p.name)
            written.append(tables / p.name)
    if record is not None:
        written.append(write_results(results, record))
    return written


def build_parser():
    """The command line of ``benchmark.py compare`` (:class:`core.command_line.KeyValueParser`; the older ``--root DIR``
    ... spellings are accepted with one deprecation line)."""
    from omegaconf import OmegaConf

    import core.hydra  # noqa: F401  (resolvers of config/environment)
    from core.command_line import Key, KeyValueParser, Legacy

    env = OmegaConf.load(Path(__file__).resolve().parents[2] / "config" / "environment" / "default.yaml")
    keys = (
        Key(
            "root",
            f"folder searched for */summary.json (default LOGDIR: {env.log_dir})",
            "path",
            default=str(env.log_dir),
            metavar="DIR",
        ),
        Key(
            "tables",
            "output folder (runs.csv, experiments.csv/.md, plots)",
            "path",
            default="tables/compare",
            metavar="DIR",
        ),
        Key(
            "by",
            "keys defining a configuration (default: all overrides except seed), e.g. [model.arch,model.encoder]",
            "list",
            metavar="[KEY,...]",
        ),
        Key(
            "metric",
            "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())
            + f" ({', '.join(sorted(LOWER_IS_BETTER))}: lowest is best)",
            default="mIoU",
            metavar="NAME",
            choices=tuple(METRICS),
        ),
        Key(
            "select",
            "what each run contributes: " + "; ".join(f"{k}: {v}" for k, v in SELECT.items()),
            default="best",
            metavar="|".join(SELECT),
            choices=tuple(SELECT),
        ),
        Key("baseline", "configuration label: adds Δ mean and Welch's t-test p-value", "text", metavar="LABEL"),
        Key("record", "also write the table as a results record", "path", metavar="results/<name>.yaml"),
        Key("caption", "the record's caption (how it was measured is added)", "text", default="", metavar="TEXT"),
    )
    return KeyValueParser(
        "benchmark.py compare",
        keys,
        usage="python benchmark.py compare [root=LOGDIR] [tables=DIR] [by=[KEY,...]] [metric=NAME] [select=RULE]\n"
        "                            [baseline=LABEL] [record=results/<name>.yaml] [caption=TEXT]",
        description="Group training runs (summary.json) into configurations: mean, std, 95 % CI, cost.",
        legacy=[Legacy(f"--{k.name}", k.name) for k in keys],
    )


def main(argv: list[str]) -> int:
    """``benchmark.py compare`` command line; returns the exit code (1: bad arguments or input, one line)."""
    from core.errors import print_written

    a = build_parser().parse(argv)
    by = [k.strip() for b in a.by for k in b.split(",") if k.strip()] if a.by else None
    return print_written(
        "benchmark.py compare",
        lambda: compare(
            a.root,
            a.tables,
            by,
            a.metric,
            a.baseline,
            warn=lambda s: print(s, file=sys.stderr),
            select=a.select,
            record=a.record,
            argv=["compare", *argv],
            caption=a.caption,
        ),
    )
