"""``python -m datasets.prepare``: the ``key=value`` convention, the older spellings, one-line errors."""

import pytest

from datasets.prepare import PREPARATIONS, build_parser, main


def test_keys_and_older_spellings_give_the_same_values(tmp_path, capsys):
    new = build_parser("voc_context").parse([f"root={tmp_path}", "voc_dir=/v", "context_dir=/c", "overwrite=true"])
    assert capsys.readouterr().err == ""
    old = build_parser("voc_context").parse([str(tmp_path), "--voc-dir", "/v", "--context-dir=/c", "--overwrite"])
    err = capsys.readouterr().err
    assert (
        vars(new)
        == vars(old)
        == {
            "root": str(tmp_path),
            "voc_dir": "/v",
            "context_dir": "/c",
            "overwrite": True,
            "overrides": [],
        }
    )
    assert err.count("\n") == 1 and "positional arguments are deprecated, use root=<dir>" in err
    assert "--voc-dir is deprecated, use voc_dir=<dir>" in err and "--overwrite is deprecated" in err
    cs = build_parser("cityscapes").parse([f"root={tmp_path}"])
    assert (cs.workers, cs.overwrite) == (1, False)


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["camvid", "root=x"],
            "python -m datasets.prepare: error: unknown dataset 'camvid'; datasets: cityscapes, voc_context",
        ),
        (
            ["cityscapes", "root=x", "voc_dir=y"],
            "error: unknown key 'voc_dir'; keys: root, workers, overwrite (see --help)",
        ),
        (["cityscapes", "workers=2"], "python -m datasets.prepare cityscapes: error: missing root=<dir> (see --help)"),
        (["cityscapes", "root=x", "workers=two"], "error: workers=two: workers takes an integer (see --help)"),
    ],
)
def test_bad_command_lines_are_one_line_with_status_2(argv, line, capsys):
    assert _status(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip("\n").endswith(line)


def test_two_roots_are_refused(tmp_path, capsys):
    assert _status(["voc_context", str(tmp_path), str(tmp_path)]) == 2
    assert f"one root=<dir> expected, got '{tmp_path}' and '{tmp_path}'" in capsys.readouterr().err


def test_without_a_dataset_one_line_lists_them_and_help_shows_usage(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert (
        err == "python -m datasets.prepare: error: missing <dataset>; datasets: cityscapes, voc_context (see --help)\n"
    )
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in PREPARATIONS)


def _status(argv) -> int:
    """Exit status of ``python -m datasets.prepare argv`` (the parser exits, main returns)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code
