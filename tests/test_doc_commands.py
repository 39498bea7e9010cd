"""Every command line the README and the docs show parses: Hydra entry points compose their config with the
command's overrides (unknown keys fail, as on the command line), the ``key=value`` entry points
(:class:`core.command_line.KeyValueParser`, the scripts/ tables and ``python -m datasets.prepare`` included) accept
the keys, and ``--help`` exits 0.

Placeholders are replaced by stand-ins (``$DATA`` -> ``data``, ``<run folder>`` -> a path); a multirun (``-m``) is
checked at the first point of each sweep. Nothing runs: configs are composed and arguments parsed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import compose_cfg

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SCRIPTS = ("main.py", "validation.py", "benchmark.py", "predict.py")
TABLE_SCRIPTS = ("deploy_table.py", "robustness_table.py", "corruption_cost.py", "reference_table.py", "photo_table.py")
MODULES = ("datasets.prepare",)  # python -m <module>
STAND_INS = [
    (re.compile(r"\$\{?DATA\}?"), "data"),
    (re.compile(r"\$\{?(run|RUN)\}?"), "logs/run"),
    (re.compile(r"<([\w.-]+)\|[^<>]*>"), r"\1"),  # <espnet|espnetv2>: the first choice
    (re.compile(r"<[^<>]+>"), "x"),
]


def drop_optional(words: list[str]) -> list[str]:
    """A usage synopsis without its optional parts: ``[--root DIR]`` and ``[key=value ...]`` are left out."""
    out, depth = [], 0
    for w in words:
        if depth == 0 and w.startswith("[") and "=" not in w.split("[", 1)[0]:
            depth = 1
        if depth == 0:
            out.append(w)
        elif w.endswith("]"):
            depth = 0
    return out


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(page:line, script, argv) of every ``python <entry>.py ...`` line in a fenced block of the pages."""
    out = []
    for page in PAGES:
        lines, fenced, start = page.read_text(encoding="utf-8").splitlines(), False, 0
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.lstrip().startswith("```"):
                fenced = not fenced
                i += 1
                continue
            start = i
            while fenced and line.rstrip().endswith("\\") and i + 1 < len(lines):  # continued lines
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            i += 1
            if not fenced:
                continue
            for rx, stand_in in STAND_INS:
                line = rx.sub(stand_in, line)
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            for k, word in enumerate(words):
                as_module = word in MODULES and k > 1 and words[k - 1] == "-m" and words[k - 2].endswith("python")
                if as_module or (word.endswith(SCRIPTS + TABLE_SCRIPTS) and k > 0 and words[k - 1].endswith("python")):
                    script = word if as_module else Path(word).name
                    argv = drop_optional(words[k + 1 :])
                    for end in (";", "&&", "||", "|"):
                        argv = argv[: argv.index(end)] if end in argv else argv
                    out.append((f"{page.relative_to(REPO)}:{start + 1}", script, argv))
                    break
    return out


def unique(commands):
    """The first place of each distinct command line (pages repeat commands)."""
    seen, out = set(), []
    for where, script, argv in commands:
        if (script, tuple(argv)) not in seen:
            seen.add((script, tuple(argv)))
            out.append((where, script, argv))
    return out


COMMANDS = unique(documented_commands())


def first_sweep_point(overrides: list[str]) -> list[str]:
    """A multirun's overrides at the first point of every sweep (``a=1,2`` -> ``a=1``)."""
    parser, out = OverridesParser.create(), []
    for o in overrides:
        parsed = parser.parse_override(o)
        if parsed.is_sweep_override():
            first = next(iter(parsed.sweep_string_iterator()))
            o = f"{parsed.get_key_element()}={first}"
        out.append(o)
    return out


#: Hydra's own flags that take a value (``--cfg job``)
HYDRA_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd", "--info", "-i")


def check_hydra(config: str, argv: list[str]) -> None:
    overrides, skip = [], False
    for a in argv:
        if skip or a.startswith("-"):
            skip = a in HYDRA_VALUE_FLAGS
            continue
        overrides.append(a)
    overrides = [o for o in first_sweep_point(overrides) if not o.startswith(("hydra/launcher", "hydra."))]
    compose_cfg(overrides, config_name=config)


def test_the_pages_show_commands_of_every_entry_point():
    assert {script for _, script, _ in COMMANDS} == set(SCRIPTS + TABLE_SCRIPTS + MODULES)
    assert len(COMMANDS) > 50


def check_table_script(script: str, argv: list[str], folder) -> None:
    """Parse a documented ``scripts/<script>`` command with its parser (``--help``: exit status 0). The older
    ``"<label>=<folder>"`` arguments of robustness_table.py name folders an earlier command wrote: they are made
    (empty) under ``folder``, the working directory of the check."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(script[:-3], REPO / "scripts" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = module.build_parser()
    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_:
            parser.parse(argv)
        assert exit_.value.code == 0
        return
    for arg in argv:
        label, eq, path = arg.partition("=")
        if script == "robustness_table.py" and eq and label not in parser.keys and not arg.startswith("-"):
            (folder / path).mkdir(parents=True, exist_ok=True)
    assert parser.parse(argv) is not None


@pytest.mark.parametrize(("where", "script", "argv"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_command_parses(where, script, argv, tmp_path, monkeypatch):
    if script == "datasets.prepare":
        from datasets.prepare import build_parser

        assert build_parser(argv[0]).parse(argv[1:]).root
        return
    if script in TABLE_SCRIPTS:
        monkeypatch.chdir(tmp_path)
        check_table_script(script, argv, tmp_path)
        return
    if script in ("validation.py", "predict.py") and "--help" in argv:
        module = __import__(script[:-3])
        with pytest.raises(SystemExit) as exit_:
            module.parse_args(argv)
        assert exit_.value.code == 0
        return
    if script == "main.py":
        if any(a.startswith(("+continue_from=", "continue_from=")) for a in argv):
            # main.py rewrites a continued run's command line from its run folder first
            from training.resume import continue_from_argv

            with pytest.raises((FileNotFoundError, ValueError)):  # the stand-in folder holds no run
                continue_from_argv(argv)
            return
        if "model=tiny_fcn" in argv:  # the model a reader adds in docs/extending.md: not in this repository
            with pytest.raises(Exception, match="Could not find 'model/tiny_fcn'"):
                check_hydra("train", argv)
            return
        check_hydra("train", argv)
    elif script == "benchmark.py":
        sub = argv[0] if argv else ""
        if sub in ("compare", "aggregate", "render"):
            from benchmarking.cli import aggregate_parser
            from benchmarking.compare import build_parser as compare_parser
            from report.render import build_parser as render_parser

            parser = {"compare": compare_parser, "aggregate": aggregate_parser, "render": render_parser}[sub]
            assert parser().parse(argv[1:]) is not None
        elif sub == "peak":
            from benchmarking.peak import parse_peak_args

            parse_peak_args(argv[1:])  # raises ValueError on a bad key or value
        elif sub in ("plot", "export"):
            assert all("=" in a for a in argv[1:]), f"{where}: {sub} takes key=value arguments"
        elif "model=tiny_fcn" in argv:
            with pytest.raises(Exception, match="Could not find 'model/tiny_fcn'"):
                check_hydra("benchmark", argv)
        else:
            check_hydra("benchmark", argv)
    elif script == "validation.py":
        import validation
        from inference.robustness import pop_protocol

        args = validation.parse_args(argv)
        assert args.checkpoint
        pop_protocol(args.overrides)  # corruptions=..., severities=... as documented
    else:
        import predict

        args = predict.parse_args(argv)
        assert args.checkpoint and args.inputs
