"""validation.py, predict.py and benchmark.py: bad inputs give exit status, one line naming the culprit, and
leave the run folder as it was (every file hashed before and after)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import predict
import validation
from core.errors import run_entry as run_in_process
from tests.conftest import REPO, call_hydra_cli, error_line
from tests.reliability.conftest import tree_hash

FAST_BENCH = ["resolution=64x64", "warmup=1", "iterations=2", "repeat=1", "device=cpu", "count_flops=false"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:4000])


@pytest.fixture
def check_unchanged(finished_run):
    """Hash the shared run before the test and compare after: the failing command changed nothing."""
    before = tree_hash(finished_run)
    yield finished_run
    assert tree_hash(finished_run) == before


def _run(entry, module, argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = run_in_process(entry, module.main, [str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    return code, error_line(capsys.readouterr().err, entry)


# ----------------------------------------------------------------------------------------------- validation.py
@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["--valdir", "{run}", "dataset.test.mod=slide"], 1, "unknown override key 'dataset.test.mod'"),
        (["--valdir", "{tmp}/nope"], 1, "{tmp}/nope is neither a run folder nor a checkpoint file"),
        (["--valdir", "{tmp}"], 1, "no checkpoint {tmp}/checkpoints/best.ckpt"),
        (["--valdir", "{run}", "--ckpt", "nosuch.ckpt"], 1, "no checkpoint nosuch.ckpt"),
        (["--valdir", "{run}", "--split", "nosplit"], 1, "has no labels for split 'nosplit'"),
        (
            ["--valdir", "{run}", "environment.data_root=/nonexistent"],
            1,
            "data root /nonexistent/camvid does not exist",
        ),
        (["--valdir", "{run}", "dataset.test.mode=diagonal"], 1, "diagonal"),
        (["--valdir", "{run}", "nokeyvalue"], 1, "overrides must be key=value, got ['nokeyvalue']"),
        (["--ckpt", "{tmp}/missing.pth", "model=smp"], 1, "{tmp}/missing.pth is neither a run folder nor a checkpoint"),
        (["--valdir", "{run}", "--bogus"], 2, "unrecognized arguments: --bogus"),
        ([], 2, "give --valdir=<run folder> or --ckpt=<checkpoint file>"),
    ],
)
def test_validation_bad_inputs(argv, code, message, check_unchanged, tmp_path, capsys):
    run = check_unchanged
    fill = {"run": run, "tmp": tmp_path}
    got, line = _run("validation.py", validation, [a.format(**fill) for a in argv], capsys)
    assert got == code and message.format(**fill) in line, line
    assert not (run / "validation").exists()  # no empty validation/<stamp> left behind


def test_validation_of_a_truncated_checkpoint_names_it_and_leaves_no_folder(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.ckpt"
    _truncate(last)
    before = tree_hash(run_copy)
    code, line = _run("validation.py", validation, ["--valdir", run_copy, "--ckpt", "last"], capsys)
    assert code == 1 and f"checkpoint {last} cannot be read" in line
    assert tree_hash(run_copy) == before


def test_old_run_folder_names_still_work(finished_run, tmp_path, capsys):
    """Folders named by older versions (``=``, ``,``, ``[]``) are read by validation.py and predict.py."""
    old = tmp_path / "camvid" / "smp" / "default__crop=[64,96],epochs=1" / "2026-01-01_00-00-00"
    shutil.copytree(finished_run, old)
    assert run_in_process("validation.py", validation.main, ["--valdir", str(old), "--num-vis", "0"]) == 0
    assert len(list((old / "validation").glob("*/metrics.json"))) == 1
    photo = sorted((REPO / "data" / "camvid" / "val").glob("*.png"))[0]
    assert predict.main(["--ckpt", str(old), str(photo), "--out", str(tmp_path / "p")])[0]["width"] == 480


# ----------------------------------------------------------------------------------------------------- predict.py
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two small CamVid frames, the first also as an 8-bit grey and a 16-bit grey PNG, and one truncated file."""
    folder = tmp_path_factory.mktemp("photos")
    frames = sorted((REPO / "data" / "camvid" / "val").glob("*.png"))[:2]
    for f in frames:
        Image.open(f).resize((96, 64)).save(folder / f"a_{f.name}")
    grey = np.asarray(Image.open(frames[0]).resize((96, 64)).convert("L"))
    Image.fromarray(grey).save(folder / "b_grey8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "c_grey16.png")  # 16-bit: same picture
    (folder / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def test_predict_goes_on_past_unreadable_files_and_reads_16bit(photos, check_unchanged, tmp_path, capsys):
    out = tmp_path / "pred"
    code, line = _run("predict.py", predict, ["--ckpt", check_unchanged, photos, "--out", out], capsys)
    assert code == 1 and "1 of 5 images failed" in line and "d_broken.png" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and [Path(f["image"]).name for f in summary["failed"]] == ["d_broken.png"]
    assert "cannot read image" in summary["failed"][0]["error"]
    grey8, grey16 = (np.asarray(Image.open(out / f"{n}_label.png")) for n in ("b_grey8", "c_grey16"))
    np.testing.assert_array_equal(grey16, grey8)  # the 16-bit PNG is the same picture, not a white image


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--ckpt", "{tmp}/nope", "{photo}"], "{tmp}/nope is neither a run folder nor a checkpoint file"),
        (["--ckpt", "{run}", "{photo}", "dataset.test.mod=slide"], "unknown override key 'dataset.test.mod'"),
        (["--ckpt", "{run}", "{tmp}/missing.png"], "input {tmp}/missing.png does not exist"),
        (["--ckpt", "{run}", "{tmp}"], "no images (.png"),
        (["--ckpt", "{run}", "--which", "nosuch", "{photo}"], "no checkpoint nosuch"),
        (["--ckpt", "{run}/checkpoints/missing.ckpt", "{photo}"], "checkpoints/missing.ckpt does not exist"),
    ],
)
def test_predict_bad_inputs(argv, message, check_unchanged, photos, tmp_path, capsys):
    fill = {"run": check_unchanged, "tmp": tmp_path, "photo": photos / "b_grey8.png"}
    code, line = _run("predict.py", predict, [*(a.format(**fill) for a in argv), "--out", tmp_path / "o"], capsys)
    assert code == 1 and message.format(**fill) in line, line


def test_predict_with_a_truncated_ckpt_names_it(finished_run, photos, tmp_path, capsys):
    ckpt = tmp_path / "best.ckpt"
    shutil.copyfile(finished_run / "checkpoints" / "best.ckpt", ckpt)
    _truncate(ckpt)
    code, line = _run("predict.py", predict, ["--ckpt", ckpt, photos / "b_grey8.png", "--out", tmp_path / "o"], capsys)
    assert code == 1 and f"checkpoint {ckpt} cannot be read" in line


# --------------------------------------------------------------------------------------------------- benchmark.py
def test_benchmark_truncated_checkpoint_in_an_old_folder_fails_with_status_1(run_copy, tmp_path, capsys):
    """An unquoted old-style path parses; the record says failed with the weights named; exit status 1."""
    old = tmp_path / "default__crop=[64,96],epochs=1" / "2026-01-01_00-00-00"
    shutil.copytree(run_copy, old)
    _truncate(old / "checkpoints" / "best.ckpt")
    code = call_hydra_cli("benchmark", [f"checkpoint={old}", f"LOGDIR={tmp_path / 'logs'}", *FAST_BENCH])
    line = error_line(capsys.readouterr().err, "benchmark.py")
    assert code == 1 and "1 measurement(s) failed" in line
    assert f"checkpoint {old / 'checkpoints' / 'best.ckpt'} cannot be read" in line
    (record,) = [json.loads(p.read_text()) for p in (old / "benchmark").glob("*.json")]
    assert record["status"] == "failed" and record["weights"] == str(old)  # the checkpoint given


@pytest.mark.parametrize(
    "argv,message",
    [
        (["foo=1"], "Could not override 'foo'"),
        (["backend=nope"], "unknown backend 'nope'"),
        (["precision=fp12"], "precision='fp12' is not supported"),
        (["resolution=wide"], "resolution='wide': expected WIDTHxHEIGHT"),
        (["checkpoint={tmp}/nope.ckpt"], "checkpoint={tmp}/nope.ckpt: no such file or run folder"),
    ],
)
def test_benchmark_bad_inputs(argv, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in argv]
    capsys.readouterr()
    assert call_hydra_cli("benchmark", [*FAST_BENCH, f"LOGDIR={tmp_path / 'logs'}", *argv]) == 1
    assert message.format(tmp=tmp_path) in error_line(capsys.readouterr().err, "benchmark.py")


def test_benchmark_sweep_writes_every_record_then_exits_1(tmp_path, capsys):
    capsys.readouterr()
    args = ["-m", "backend=nope,eager", *FAST_BENCH, f"LOGDIR={tmp_path}"]
    assert call_hydra_cli("benchmark", args) == 1
    assert "1 measurement(s) failed; first: " in error_line(capsys.readouterr().err, "benchmark.py")
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("benchmark/*.json")]
    assert sorted(r["status"] for r in records) == ["failed", "ok"] and len(records) == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["aggregate", "--bogus"], "benchmark.py aggregate: error: unrecognized arguments: --bogus"),
        (["plot", "dataset=camvid"], "benchmark.py plot: dataset=<name> and resolution=<WxH> are required"),
    ],
)
def test_benchmark_subcommand_usage_errors(argv, message, capsys):
    assert call_hydra_cli("benchmark", argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


# ------------------------------------------------------------------------- every entry point: unquoted spaces
QUOTE_IT = "\"environment.data_root='/tmp/my folder'\""  # as typed in a shell


@pytest.mark.parametrize("entry", ["main", "benchmark"])
def test_hydra_entry_names_an_override_split_at_a_space(entry, capsys):
    """``environment.data_root=/tmp/my folder`` unquoted: one line naming the override and the quoting to use."""
    capsys.readouterr()
    assert call_hydra_cli(entry, ["environment.data_root=/tmp/my", "folder", "epochs=1"]) == 1
    line = error_line(capsys.readouterr().err, f"{entry}.py")
    assert "override environment.data_root: the value '/tmp/my folder' holds a space and must be quoted" in line
    assert QUOTE_IT in line


@pytest.mark.parametrize(
    "entry,module,argv",
    [
        ("validation.py", validation, ["--valdir", "{tmp}", "environment.data_root=/tmp/my", "folder"]),
        ("predict.py", predict, ["--ckpt", "{tmp}", "environment.data_root=/tmp/my", "folder", "{tmp}"]),
    ],
)
def test_argparse_entry_names_an_override_split_at_a_space(entry, module, argv, tmp_path, capsys):
    # predict.py: words that are existing paths are images, so the split-off word here is no file
    code, line = _run(entry, module, [a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and QUOTE_IT in line and "override environment.data_root" in line
