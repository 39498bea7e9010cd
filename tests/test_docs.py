"""The checkable parts of the documentation against the code and configs.

* every ``config/<group>/<option>.yaml`` has its group and option in the groups table of docs/configuration.md
  (experiments included), every top-level key of ``config/train.yaml`` / ``config/benchmark.yaml`` is in the key
  table of its page;
* every ``key=`` of the entry points (:class:`core.command_line.Key`: validation.py, predict.py, the ``benchmark.py``
  subcommands, the scripts/ tables and ``python -m datasets.prepare``) is on its topic page: the ``Key("name", ...)``
  and ``Key.switch("name", ...)`` calls are read from the source with :mod:`ast` (importing validation.py or
  predict.py loads torch, timm and smp, seconds this test does not spend); cheap parsers (``benchmark.py render`` and
  ``aggregate``, scripts/deploy_table.py, scripts/robustness_table.py, ``datasets.prepare``) are also built for real
  and must give the same keys, so the extraction is checked against the parsers;
* every page of docs/ is in the mkdocs.yml nav and linked from docs/index.md (API pages from docs/api/index.md);
* the ``dataset.test.*`` settings table and every ``dataset.test.<key>=`` / ``dataset.kwargs.<key>=`` override in a
  command of the docs name keys the dataset configs have (a missing key needs ``+``, as Hydra says);
* sentences about ``make train`` / ``camvid_embedded`` match ``config/experiment/camvid_embedded.yaml``
  (``precision=auto``, the Lite0 encoder), unless they say they describe the earlier recipe;
* no statement says the 4x-within-0.5-mIoU target is met or passed (no row of docs/deploy.md shows it for a trained
  model);
* result rows of README.md and docs/results.md that give a benchmark command and state ``N threads`` /
  ``N timed iterations`` set them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CONFIG = REPO / "config"

#: entry point source -> the page(s) documenting its keys (core.command_line.Key)
KEY_ENTRY_POINTS = {
    "validation.py": ["inference.md"],
    "predict.py": ["inference.md"],
    "benchmarking/cli.py": ["benchmarking.md"],  # benchmark.py aggregate
    "benchmarking/compare/__init__.py": ["comparing.md"],  # benchmark.py compare
    "report/render.py": ["development.md"],  # benchmark.py render
    "scripts/deploy_table.py": ["deploy.md"],
    "scripts/robustness_table.py": ["robustness.md"],
    "scripts/corruption_cost.py": ["robustness.md"],
    "datasets/prepare.py": ["datasets.md"],
    "scripts/reference_table.py": ["models.md"],
    "scripts/photo_table.py": ["inference.md"],
    "core/command_line.py": ["inference.md"],  # checkpoint=, which= of validation.py and predict.py
    "inference/loading.py": ["inference.md"],  # device=
}
PAST = r"\b(before|earlier|at that time)\b"  # words that date a statement about an earlier make train


def page(name: str) -> str:
    return (DOCS / name).read_text()


def groups_table() -> dict[str, str]:
    """``group -> options cell`` of the table under '## Groups' of docs/configuration.md."""
    text = page("configuration.md")
    section = text[text.index("\n## Groups\n") : text.index("\n### What each group holds")]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([^`]+)` \| (.*?) \|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_config_group_and_option_is_in_the_groups_table():
    rows = groups_table()
    missing = []
    for f in sorted(CONFIG.rglob("*.yaml")):
        rel = f.relative_to(CONFIG)
        if len(rel.parts) < 2:
            continue  # train.yaml, benchmark.yaml: the primary configs
        group = "/".join(rel.parts[:-1])
        if group not in rows:
            missing.append(f"group {group}")
        elif f"`{f.stem}`" not in rows[group]:
            missing.append(f"{group}={f.stem}")
    assert not missing, f"docs/configuration.md groups table lacks: {missing}"


def test_every_experiment_is_named_on_the_configuration_page():
    names = sorted(p.stem for p in (CONFIG / "experiment").glob("*.yaml"))
    assert len(names) >= 10
    row = groups_table()["experiment"]
    assert [n for n in names if f"`{n}`" not in row] == []


@pytest.mark.parametrize(
    "config, doc, heading",
    [("train.yaml", "configuration.md", "## Top-level keys"), ("benchmark.yaml", "benchmarking.md", "### Settings")],
)
def test_every_top_level_key_is_in_the_key_table(config, doc, heading):
    keys = [k for k in yaml.safe_load((CONFIG / config).read_text()) if k not in ("defaults", "hydra")]
    text = page(doc)
    start = text.index(heading)
    table = "\n".join(line for line in text[start:].splitlines()[2:] if line.startswith("|"))
    table = table.split("\n\n")[0]
    first_cells = " ".join(line.split("|")[1] for line in table.splitlines())
    missing = [k for k in keys if not re.search(rf"`\+?{re.escape(k)}[`.]", first_cells)]
    assert not missing, f"docs/{doc}: keys of config/{config} missing from the table under {heading!r}: {missing}"


def source_keys(rel: str) -> set[str]:
    """Names of every ``Key("name", ...)`` / ``Key.switch("name", ...)`` call (:class:`core.command_line.Key`) in
    ``rel``."""
    tree = ast.parse((REPO / rel).read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and "Key" in (getattr(node.func, "id", None), getattr(getattr(node.func, "value", None), "id", None))
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def script(name: str):
    """``scripts/<name>.py`` imported as a module (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_docs", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_key_extraction_equals_the_parsers():
    """The :mod:`ast` reading gives the keys the parsers hold, on the entry points that import in milliseconds."""
    from benchmarking.cli import aggregate_parser
    from datasets.prepare import PREPARATIONS
    from datasets.prepare import build_parser as prepare_parser
    from report.render import build_parser

    assert set(build_parser().keys) == source_keys("report/render.py") == {"files", "results", "check"}
    assert (
        {k for name in PREPARATIONS for k in prepare_parser(name).keys}
        == source_keys("datasets/prepare.py")
        == {"root", "workers", "voc_dir", "context_dir", "overwrite"}
    )
    assert {"uncertainty", "alpha"} <= source_keys("predict.py") and "fit_temperature" in source_keys("validation.py")
    assert set(aggregate_parser().keys) == source_keys("benchmarking/cli.py")
    assert {"root", "tables", "import_mmseg"} <= source_keys("benchmarking/cli.py")
    assert set(script("deploy_table").build_parser().keys) == source_keys("scripts/deploy_table.py")
    assert {"roots", "since", "peak.int8", "peak_tflops", "record", "command"} <= source_keys("scripts/deploy_table.py")
    assert (
        set(script("robustness_table").build_parser().keys)
        == source_keys("scripts/robustness_table.py")
        == {
            "folder",
            "record",
            "caption",
            "commit",
            "command",
        }
    )


def assert_on_pages(entry: str, names: set[str], pages: list[str], what: str, pattern: str) -> None:
    """Every one of ``names`` (``what``: keys or flags of ``entry``) matches ``pattern`` (``{}`` = the escaped name)
    somewhere in docs/``pages``."""
    text = "\n".join(page(p) for p in pages)
    missing = sorted(n for n in names if not re.search(pattern.format(re.escape(n)), text))
    assert not missing, f"{entry}: {what} missing from docs/{', docs/'.join(pages)}: {missing}"


@pytest.mark.parametrize("entry", sorted(KEY_ENTRY_POINTS))
def test_every_key_is_on_its_page(entry):
    keys = source_keys(entry)
    assert keys, f"no Key('...') found in {entry}"
    assert_on_pages(entry, keys, KEY_ENTRY_POINTS[entry], "keys", r"(?<![\w.-]){}=")


def test_plot_keys_are_on_the_benchmarking_page():
    tree = ast.parse((REPO / "benchmarking" / "cli.py").read_text())
    keys = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PLOT_KEYS"
    )
    text = page("benchmarking.md")
    assert [k for k in keys if f"{k}=" not in text] == []


def nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [p for v in node.values() for p in nav_pages(v)]
    return [p for v in node for p in nav_pages(v)]


def links(md: Path) -> set[Path]:
    return {(md.parent / t).resolve() for t in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", md.read_text())}


def test_every_page_is_in_the_nav_and_linked_from_the_index():
    mkdocs = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert sorted(pages - set(nav_pages(mkdocs["nav"]))) == []
    from_index = links(DOCS / "index.md") | {DOCS / "index.md"}
    from_api_index = links(DOCS / "api" / "index.md") | {DOCS / "api" / "index.md"}
    unlinked = [
        p for p in sorted(pages) if (DOCS / p).resolve() not in (from_api_index if p.startswith("api/") else from_index)
    ]
    assert unlinked == [], f"pages not linked from docs/index.md (api/: from docs/api/index.md): {unlinked}"


def dataset_config(name: str) -> dict:
    """``config/dataset/<name>.yaml`` with the dataset configs of its defaults list merged underneath."""
    raw = yaml.safe_load((CONFIG / "dataset" / f"{name}.yaml").read_text())
    merged: dict = {}
    for entry in raw.get("defaults", []):
        if isinstance(entry, str) and (CONFIG / "dataset" / f"{entry}.yaml").is_file():
            merged = dataset_config(entry)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = {**merged[key], **value}
        merged[key] = value
    return merged


def test_dataset_test_settings_table_names_keys_of_the_dataset_configs():
    configs = [dataset_config(p.stem) for p in (CONFIG / "dataset").glob("*.yaml")]
    text = page("inference.md")
    rows = re.findall(r"^\| `(\w+)` \| (.*)$", text[text.index("| setting (`dataset.test.*`)") :], flags=re.M)
    assert len(rows) >= 6
    bad = [
        key
        for key, meaning in rows
        if not all(key in (c.get("test") or {}) for c in configs) and f"+dataset.test.{key}=" not in meaning
    ]
    assert not bad, f"docs/inference.md: dataset.test.* rows that are not keys of every dataset config: {bad}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_dataset_overrides_in_commands_name_existing_keys():
    checked, bad = 0, []
    for md in doc_files():
        for line in md.read_text().splitlines():
            if "typo" in line:
                continue  # a deliberately wrong key, shown with its error
            for plus, node, key in re.findall(r"(?<![\w.])(\+?)dataset\.(test|kwargs)\.(\w+)=", line):
                if plus:
                    continue
                checked += 1
                named = re.findall(r"(?<![\w.])dataset=(\w+)", line)
                names = named or ["camvid"]
                if not all(key in (dataset_config(n).get(node) or {}) for n in names):
                    bad.append(f"{md.relative_to(REPO)}: dataset.{node}.{key}= with dataset={names[0]}")
    assert checked >= 3
    assert not bad, f"overrides of keys the dataset config lacks (Hydra needs +key=...): {bad}"


def units(text: str, bullets: bool) -> list[str]:
    """Table rows, and sentences of paragraphs (whole list items if ``bullets``)."""
    out, block, code = [], [], False
    for line in text.splitlines() + [""]:
        if line.startswith("```"):
            code = not code
        starts_item = bullets and line.startswith("- ")
        if code or line.startswith(("|", "```")) or not line.strip() or starts_item:
            if block:
                para = " ".join(block)
                out += [para] if bullets else re.split(r"(?<=[.;!?])\s+(?=[A-Z`(])", para)
                block = []
            if line.startswith("|") and not code:
                out.append(line)
            elif starts_item:
                block = [line]
            continue
        block.append(line.strip())
    return out


def test_make_train_statements_match_its_experiment():
    exp = yaml.safe_load((CONFIG / "experiment" / "camvid_embedded.yaml").read_text())
    assert (exp["precision"], exp["model"]["encoder"]) == ("auto", "tu-tf_efficientnet_lite0")
    assert "main.py experiment=camvid_embedded" in (REPO / "Makefile").read_text()
    bad = []
    for md in doc_files():
        for unit in units(md.read_text(), bullets=False):
            if ("`make train`" not in unit and "camvid_embedded" not in unit) or re.search(PAST, unit):
                continue
            other_precision = any(p != exp["precision"] for p in re.findall(r"precision=([\w-]+)", unit))
            bf16_not_auto = "bf16" in unit and not re.search(r"\bauto\b", unit)
            if "resnet18" in unit or other_precision or bf16_not_auto:
                bad.append(f"{md.relative_to(REPO)}: {unit[:160]}")
    assert not bad, (
        "statements about make train that do not match config/experiment/camvid_embedded.yaml:\n" + "\n".join(bad)
    )


def test_no_statement_claims_the_4x_target_is_met():
    target = re.compile(r"4x.*(0\.5 mIoU|0\.5 points|ΔmIoU\| ≤ 0\.5)|(0\.5 mIoU|0\.5 points|ΔmIoU\| ≤ 0\.5).*4x")
    claim = re.compile(r"\b(met|meets|passes|pass it)\b")
    bad = [
        f"{md.relative_to(REPO)}: {unit[:200]}"
        for md in doc_files()
        for unit in units(md.read_text(), bullets=True)
        if target.search(unit) and claim.search(unit)
    ]
    assert not bad, "the 4x-within-0.5-mIoU target is shown by no trained-model row of docs/deploy.md:\n" + "\n".join(
        bad
    )


def test_result_rows_set_the_threads_and_iterations_they_state():
    text = (REPO / "README.md").read_text() + "\n" + page("results.md")
    rows = [r for r in text.splitlines() if r.startswith("|")]
    rows = [r for r in rows if "benchmark.py" in r or "deploy_sweep.sh" in r]
    assert len(rows) >= 3
    bad = []
    for row in rows:
        for n in re.findall(r"(?<![=\w])(\d+) threads\b", row):
            if f"threads={n}" not in row:
                bad.append(f"{row[:80]}...: states {n} threads, no threads={n}")
        for n in re.findall(r"(?<![=\w])(\d+) timed iterations\b", row):
            if f"iterations={n}" not in row:
                bad.append(f"{row[:80]}...: states {n} timed iterations, no iterations={n}")
    assert not bad, "\n".join(bad)
