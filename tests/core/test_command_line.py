"""The ``key=value`` command line (core.command_line) of validation.py, predict.py and the benchmark.py subcommands:
values through Hydra's grammar, the older spellings giving the same request with one deprecation line, unknown keys
as one line, ``--help`` with status 0 everywhere."""

from __future__ import annotations

import pytest

import predict
import validation
from benchmarking.cli import aggregate_parser
from benchmarking.compare import build_parser as compare_parser
from core.command_line import Key, KeyValueParser, Legacy
from report.render import build_parser as render_parser
from tests.conftest import call_hydra_cli, error_line

RUN = "logs/camvid/smp/default__crop=[64,96],epochs=1/2026-01-01_00-00-00"  # an older name: '=', ',' and '[]'


def parse(parser: KeyValueParser, argv: list[str], capsys) -> tuple[dict, list[str]]:
    """(the parsed request as a dict, the lines printed on stderr)."""
    capsys.readouterr()
    args = parser.parse(argv)
    return vars(args), capsys.readouterr().err.splitlines()


def toy() -> KeyValueParser:
    keys = (
        Key("checkpoint", "run", "path", required=True),
        Key("size", "[H,W]", "ints"),
        Key("scales", "scales", "floats"),
        Key("flip", "flip", "bool", default=False),
        Key("n", "n", "int", default=3),
        Key("mode", "mode", default="auto", choices=("auto", "whole")),
        Key("names", "names", "list"),
    )
    legacy = (Legacy("--flip", "flip", nargs=0), Legacy("--size", "size", nargs="+"), Legacy("--n", "n"))
    return KeyValueParser("toy.py", keys, usage="python toy.py checkpoint=X", config_keys={"dataset"}, legacy=legacy)


def test_values_go_through_hydras_grammar(capsys):
    args, err = parse(
        toy(), [f"checkpoint={RUN}", "size=[512,256]", "scales=[0.5,1]", "flip=true", "n=7", "names=a,b"], capsys
    )
    assert err == []
    assert args == {
        "checkpoint": RUN,  # quoted before parsing: '=' ',' '[]' of an older run-folder name
        "size": [512, 256],
        "scales": [0.5, 1.0],
        "flip": True,
        "n": 7,
        "mode": "auto",
        "names": ["a", "b"],  # a comma list reads as a list
        "overrides": [],
    }
    args, _ = parse(toy(), ["checkpoint='/tmp/my dir'", "size=64", "dataset.test.mode=slide", "+dataset.x=1"], capsys)
    assert (args["checkpoint"], args["size"]) == ("/tmp/my dir", [64])
    assert args["overrides"] == ["dataset.test.mode=slide", "+dataset.x=1"]  # config overrides: as typed


@pytest.mark.parametrize(
    "argv,message",
    [
        (["checkpoint=x", "n=0.5"], "n=0.5: n takes an integer"),
        (["checkpoint=x", "flip=yes"], "flip=yes: flip is true or false"),
        (["checkpoint=x", "mode=slide"], "mode=slide: mode is one of auto, whole"),
        (["checkpoint=x", "n=1,2"], "n=1,2: one value expected"),
        (["checkpoint=x", "nn=1"], "unknown key 'nn'; keys: checkpoint, size, scales, flip, n, mode, names"),
        (["checkpoint=x", "--nn"], "unknown option '--nn'; keys: checkpoint, size"),
        (["word", "checkpoint=x"], "bad argument 'word': use key=value"),
        (["n=1"], "missing checkpoint=<path>"),
        (["checkpoint=x", "--size"], "--size needs one or more numbers"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(argv, message, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        toy().parse(argv)
    assert exit_.value.code == 2
    line = error_line(capsys.readouterr().err, "toy.py")
    assert message in line and line.endswith("(see --help)"), line


def test_older_flags_give_the_same_request_and_one_deprecation_line(capsys):
    new, err_new = parse(toy(), ["checkpoint=x", "size=[3,4]", "flip=true", "n=5"], capsys)
    old, err_old = parse(toy(), ["checkpoint=x", "--size", "3", "4", "--flip", "--n=5"], capsys)
    assert new == old and err_new == []
    assert err_old == [
        "toy.py: --size is deprecated, use size=<ints>; --flip is deprecated, use flip=<bool>; "
        "--n is deprecated, use n=<int>"
    ]


def test_repeatable_texts_dotted_keys_and_legacy_values(tmp_path, capsys):
    folder = tmp_path / "run a"
    folder.mkdir()
    keys = (
        Key("command", "c", "texts", default=()),
        Key("peak.int8", "p", "float"),
        Key("row", "r", "texts"),
    )
    legacy = (
        Legacy("--command", "command"),
        Legacy(
            "--peak", lambda v: f"peak.{v.partition('=')[0]}", use="peak.<p>=X", value=lambda v: v.partition("=")[2]
        ),
    )

    def toy2():
        return KeyValueParser(
            "t.py", keys, usage="t", legacy=legacy, positional="row", positional_too=lambda a: "=" in a and "/" in a
        )

    both = "run x --caption 'a b' --note \"c\" \\"  # both quote characters and a trailing backslash
    new, err = parse(toy2(), [f"command={both}", "command=b,c", "peak.int8=0.5", f"row=L={folder}"], capsys)
    assert err == [] and new == {"command": [both, "b,c"], "peak.int8": 0.5, "row": [f"L={folder}"], "overrides": []}
    old, err = parse(toy2(), ["--command", both, "--command=b,c", "--peak", "int8=0.5", f"L={folder}"], capsys)
    assert old == new
    assert err == [
        "t.py: --command is deprecated, use command=<texts>; --peak is deprecated, use peak.<p>=X; positional "
        "arguments are deprecated, use row=<texts>"
    ]
    assert parse(toy2(), [], capsys)[0]["command"] == ()  # the default when not given
    with pytest.raises(SystemExit):
        toy2().parse(["--peak", "fp16=1"])
    assert "--peak fp16=1: no key 'peak.fp16'; keys: command, peak.int8, row" in error_line(
        capsys.readouterr().err, "t.py"
    )


# ---------------------------------------------------------------------------------------------------- validation.py
@pytest.mark.parametrize(
    "new,old,line",
    [
        (
            [f"checkpoint={RUN}", "which=last", "split=test", "dataset.test.mode=slide", "out=o", "num_vis=0"],
            [
                "--valdir",
                RUN,
                "--ckpt",
                "last",
                "--split",
                "test",
                "dataset.test.mode=slide",
                "--out",
                "o",
                "--num-vis=0",
            ],
            "validation.py: --valdir is deprecated, use checkpoint=<run folder>; --ckpt is deprecated, use "
            "which=best|last; --split is deprecated, use split=val|test|<name>; --out is deprecated, use out=DIR; "
            "--num-vis is deprecated, use num_vis=N",
        ),
        (
            ["checkpoint=w.pth", "model=espnet", "dataset=camvid", "split=test", "device=cpu"],
            ["--ckpt", "w.pth", "model=espnet", "dataset=camvid", "split=test", "--device", "cpu"],
            "validation.py: --ckpt is deprecated, use checkpoint=<run folder|file>; --device is deprecated, use "
            "device=cpu|cuda",
        ),
        (
            [f"checkpoint={RUN}", "fit_temperature=true", "fit_pixels=2000"],
            [f"--valdir={RUN}", "--fit-temperature", "--fit-pixels", "2000"],
            "validation.py: --valdir is deprecated, use checkpoint=<run folder>; --fit-temperature is deprecated, use "
            "fit_temperature=true; --fit-pixels is deprecated, use fit_pixels=N",
        ),
    ],
)
def test_validation_new_and_older_spelling_give_the_same_request(new, old, line, capsys):
    capsys.readouterr()
    a = vars(validation.parse_args(new))
    assert capsys.readouterr().err == ""
    b = vars(validation.parse_args(old))
    assert capsys.readouterr().err.splitlines() == [line]
    assert a == b
    assert a["checkpoint"] == new[0].partition("=")[2] and a["which"] in ("best", "last")


def test_validation_older_valdir_with_a_ckpt_file_keeps_its_meaning(capsys):
    """``--valdir X --ckpt <file>``: the file, with run X's config (``RunFolder.checkpoint`` takes a path)."""
    args = validation.parse_args(["--ckpt", "other/epoch=1.ckpt", "--valdir", RUN])
    assert (args.checkpoint, args.which) == (RUN, "other/epoch=1.ckpt")
    args = validation.parse_args(["--ckpt", "other/epoch=1.ckpt"])
    assert (args.checkpoint, args.which) == ("other/epoch=1.ckpt", "best")


def test_predict_which_is_best_or_last(capsys):
    with pytest.raises(SystemExit) as exit_:
        predict.parse_args([f"checkpoint={RUN}", "inputs=[a.jpg]", "which=nosuch"])
    assert exit_.value.code == 2
    assert "which=nosuch: which is one of best, last" in error_line(capsys.readouterr().err, "predict.py")


def test_validation_request_values(capsys):
    args = validation.parse_args([f"checkpoint={RUN}", "corruptions=[fog]", "severities=[3]", "lr=0.1"])
    assert (args.checkpoint, args.which, args.split, args.fit_temperature, args.fit_pixels) == (
        RUN,
        "best",
        "val",
        False,
        1_000_000,
    )
    assert args.overrides == ["corruptions=[fog]", "severities=[3]", "lr=0.1"]  # inference.robustness pops them


# ------------------------------------------------------------------------------------------------------- predict.py
def test_predict_new_and_older_spelling_give_the_same_request(tmp_path, capsys):
    photo = tmp_path / "a=b.jpg"  # an existing path with '=' is an image in the older spelling
    photo.write_bytes(b"")
    new = [
        f"checkpoint={RUN}",
        f"inputs=['{photo}',photos/]",
        "which=last",
        "mode=slide",
        "crop_size=[360,480]",
        "stride=240",
        "scales=[0.5,1.0]",
        "flip=true",
        "window_batch=2",
        "accumulate_on=cpu",
        "backend=openvino:int8",
        "calibration.images=8",
        "uncertainty=true",
        "alpha=0.3",
        "out=o",
    ]
    old = [
        "--ckpt",
        RUN,
        str(photo),
        "photos/",
        "--which",
        "last",
        "--mode",
        "slide",
        "--crop-size",
        "360",
        "480",
        "--stride",
        "240",
        "--scales",
        "0.5",
        "1.0",
        "--flip",
        "--window-batch",
        "2",
        "--accumulate-on",
        "cpu",
        "--backend",
        "openvino:int8",
        "calibration.images=8",
        "--uncertainty",
        "--alpha",
        "0.3",
        "--out",
        "o",
    ]
    capsys.readouterr()
    a = vars(predict.parse_args(new))
    assert capsys.readouterr().err == ""
    b = vars(predict.parse_args(old))
    (line,) = capsys.readouterr().err.splitlines()
    assert a == b
    assert a["inputs"] == [str(photo), "photos/"] and a["crop_size"] == [360, 480] and a["stride"] == [240]
    assert a["scales"] == [0.5, 1.0] and a["flip"] is True and a["uncertainty"] is True and a["alpha"] == 0.3
    assert a["overrides"] == ["calibration.images=8"]
    assert line.startswith(
        "predict.py: --ckpt is deprecated, use checkpoint=<run folder|file>; positional arguments are "
    )
    assert "use inputs=[a.jpg,photos/]" in line and "--crop-size is deprecated, use crop_size=[H,W]" in line


def test_predict_defaults(capsys):
    args = predict.parse_args([f"checkpoint={RUN}", "inputs=[x.png]"])
    assert (args.which, args.out, args.mode, args.backend, args.alpha, args.flip, args.uncertainty) == (
        "best",
        "outputs/predictions",
        None,
        "eager",
        0.5,
        None,
        False,
    )
    assert args.max_whole_pixels == 2048 * 1024 and args.overrides == []


# --------------------------------------------------------------------------------------- benchmark.py subcommands
def test_compare_aggregate_render_new_and_older_spelling(capsys):
    new, _ = parse(
        compare_parser(),
        ["root=logs", "tables=t", "by=[model.arch,lr]", "metric=mPC", "select=test-at-best-val", "record=r.yaml"],
        capsys,
    )
    old, err = parse(
        compare_parser(),
        ["--root", "logs", "--tables", "t", "--by", "model.arch,lr", "--metric", "mPC", "--select", "test-at-best-val"]
        + ["--record", "r.yaml"],
        capsys,
    )
    assert new["by"] == ["model.arch", "lr"] and old["by"] == ["model.arch,lr"]  # both group by the two keys
    assert {k: v for k, v in new.items() if k != "by"} == {k: v for k, v in old.items() if k != "by"}
    assert len(err) == 1 and err[0].startswith("benchmark.py compare: --root is deprecated, use root=DIR;")
    new, _ = parse(compare_parser(), ["baseline=model.arch=Unet", "caption=Three seeds, one split"], capsys)
    assert (new["baseline"], new["caption"]) == ("model.arch=Unet", "Three seeds, one split")

    new, _ = parse(aggregate_parser(), ["root=l", "tables=t", "import_mmseg=true"], capsys)
    old, err = parse(aggregate_parser(), ["--root", "l", "--tables", "t", "--import-mmseg"], capsys)
    assert new == old and new["import_mmseg"] is True and len(err) == 1

    new, _ = parse(render_parser(), ["check=true", "results=r", "files=[README.md,docs/x.md]"], capsys)
    old, err = parse(render_parser(), ["--check", "--results", "r", "README.md", "docs/x.md"], capsys)
    assert new == old and new["files"] == ["README.md", "docs/x.md"] and new["check"] is True
    assert err == [
        "benchmark.py render: --check is deprecated, use check=true; --results is deprecated, use results=DIR; "
        "positional arguments are deprecated, use files=[README.md,...]"
    ]


@pytest.mark.parametrize(
    "module,argv,entry",
    [
        (validation, [f"checkpoint={RUN}", "chekpoint=x"], "validation.py"),
        (predict, [f"checkpoint={RUN}", "inputs=[a.jpg]", "crop=[1,2]"], "predict.py"),
    ],
)
def test_unknown_key_is_one_line_naming_it_and_the_valid_keys(module, argv, entry, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        module.parse_args(argv)
    assert exit_.value.code == 2
    line = error_line(capsys.readouterr().err, entry)
    bad = argv[-1].partition("=")[0]
    assert f"unknown key {bad!r}; keys: checkpoint, " in line and "config overrides: " in line
    assert "dataset" in line and "environment" in line  # the config keys it could have meant


# ---------------------------------------------------------------------------------------------------------- scripts/
def test_corruption_cost_new_and_older_spelling(capsys):
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("corruption_cost", REPO / "scripts" / "corruption_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    new, err_new = parse(module.build_parser(), ["images=2", "split=test", "out=o.yaml", "load_note=a, b=c"], capsys)
    old, err_old = parse(
        module.build_parser(), ["--images", "2", "--split", "test", "--out", "o.yaml", "--load-note", "a, b=c"], capsys
    )
    assert new == old == {"images": 2, "split": "test", "out": "o.yaml", "load_note": "a, b=c", "overrides": []}
    assert err_new == [] and err_old == [
        "corruption_cost.py: --images is deprecated, use images=N; --split is deprecated, use split=val; --out is "
        "deprecated, use out=FILE; --load-note is deprecated, use load_note=TEXT"
    ]
    assert parse(module.build_parser(), [], capsys)[0] == {
        "images": 3,
        "split": "val",
        "out": None,
        "load_note": "",
        "overrides": [],
    }


# --------------------------------------------------------------------------------------------------------- --help
@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("module", [validation, predict])
def test_help_of_validation_and_predict(module, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.parse_args([flag])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "checkpoint=" in out and "which=best|last" in out


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["aggregate", "--help"], "import_mmseg=true"),
        (["compare", "--help"], "select=best|last|test-at-best-val"),
        (["render", "-h"], "check=true"),
        (["plot", "--help"], "resolution=<WxH>"),
        (["peak", "--help"], "precisions=[fp32,bf16,int8]"),
        (["export", "--help"], "formats=onnx,openvino,openvino_int8"),
        (["--help"], "benchmark is powered by Hydra"),
    ],
)
def test_help_of_benchmark_and_its_subcommands(argv, expect, capsys):
    capsys.readouterr()
    assert call_hydra_cli("benchmark", argv) == 0
    assert expect in capsys.readouterr().out


def test_help_of_main(capsys):
    capsys.readouterr()
    assert call_hydra_cli("main", ["--help"]) == 0
    assert "Override anything in the config" in capsys.readouterr().out
