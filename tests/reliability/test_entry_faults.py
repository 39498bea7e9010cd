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
    except SystemExit as e:  # usage errors (core.command_line)
        code = e.code
    return code, error_line(capsys.readouterr().err, entry)


# ----------------------------------------------------------------------------------------------- validation.py
@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["checkpoint={run}", "dataset.test.mod=slide"], 1, "unknown override key 'dataset.test.mod'"),
        (["checkpoint={tmp}/nope"], 1, "{tmp}/nope is neither a run folder nor a checkpoint file"),
        (["checkpoint={tmp}"], 1, "no checkpoint {tmp}/checkpoints/best.ckpt"),
        (["checkpoint={run}/checkpoints/nosuch.ckpt"], 1, "checkpoint {run}/checkpoints/nosuch.ckpt does not exist"),
        (["--valdir", "{run}", "--ckpt", "nosuch.ckpt"], 1, "no checkpoint nosuch.ckpt"),  # the older spelling
        (["checkpoint={run}", "split=nosplit"], 1, "has no labels for split 'nosplit'"),
        (["checkpoint={run}", "environment.data_root=/nonexistent"], 1, "data root /nonexistent/camvid does not exist"),
        (["checkpoint={run}", "dataset.test.mode=diagonal"], 1, "diagonal"),
        (["nokeyvalue", "checkpoint={run}"], 2, "bad argument 'nokeyvalue': use key=value (keys: checkpoint, which,"),
        (
            ["checkpoint={tmp}/missing.pth", "model=smp"],
            1,
            "{tmp}/missing.pth is neither a run folder nor a checkpoint",
        ),
        (["checkpoint={run}", "bogus=1"], 2, "unknown key 'bogus'; keys: checkpoint, which, split, out, device,"),
        (["checkpoint={run}", "which=middle"], 2, "which=middle: which is one of best, last"),
        (["checkpoint={run}", "--bogus"], 2, "unknown option '--bogus'; keys: checkpoint, which,"),
        ([], 2, "give checkpoint=<run folder> or checkpoint=<checkpoint file>"),
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
    code, line = _run("validation.py", validation, [f"checkpoint={run_copy}", "which=last"], capsys)
    assert code == 1 and f"checkpoint {last} cannot be read" in line
    assert tree_hash(run_copy) == before


def test_old_run_folder_names_still_work(finished_run, tmp_path, capsys):
    """Folders named by older versions (``=``, ``,``, ``[]``) are read by validation.py and predict.py."""
    old = tmp_path / "camvid" / "smp" / "default__crop=[64,96],epochs=1" / "2026-01-01_00-00-00"
    shutil.copytree(finished_run, old)
    assert run_in_process("validation.py", validation.main, [f"checkpoint={old}", "num_vis=0"]) == 0
    assert len(list((old / "validation").glob("*/metrics.json"))) == 1
    photo = sorted((REPO / "data" / "camvid" / "val").glob("*.png"))[0]
    assert predict.main([f"checkpoint={old}", f"inputs=[{photo}]", f"out={tmp_path / 'p'}"])[0]["width"] == 480


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
    code, line = _run(
        "predict.py", predict, [f"checkpoint={check_unchanged}", f"inputs=[{photos}]", f"out={out}"], capsys
    )
    assert code == 1 and "1 of 5 images failed" in line and "d_broken.png" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and [Path(f["image"]).name for f in summary["failed"]] == ["d_broken.png"]
    assert "cannot read image" in summary["failed"][0]["error"]
    grey8, grey16 = (np.asarray(Image.open(out / f"{n}_label.png")) for n in ("b_grey8", "c_grey16"))
    np.testing.assert_array_equal(grey16, grey8)  # the 16-bit PNG is the same picture, not a white image


@pytest.mark.parametrize(
    "argv,message",
    [
        (["checkpoint={tmp}/nope", "inputs=[{photo}]"], "{tmp}/nope is neither a run folder nor a checkpoint file"),
        (["checkpoint={run}", "inputs=[{photo}]", "dataset.test.mod=slide"], "unknown override key 'dataset.test.mod'"),
        (["checkpoint={run}", "inputs=[{tmp}/missing.png]"], "input {tmp}/missing.png does not exist"),
        (["checkpoint={run}", "inputs=[{tmp}]"], "no images (.png"),
        (["checkpoint={run}/checkpoints/missing.ckpt", "inputs=[{photo}]"], "checkpoints/missing.ckpt does not exist"),
    ],
)
def test_predict_bad_inputs(argv, message, check_unchanged, photos, tmp_path, capsys):
    fill = {"run": check_unchanged, "tmp": tmp_path, "photo": photos / "b_grey8.png"}
    code, line = _run("predict.py", predict, [*(a.format(**fill) for a in argv), f"out={tmp_path / 'o'}"], capsys)
    assert code == 1 and message.format(**fill) in line, line


def test_predict_with_a_truncated_ckpt_names_it(finished_run, photos, tmp_path, capsys):
    ckpt = tmp_path / "best.ckpt"
    shutil.copyfile(finished_run / "checkpoints" / "best.ckpt", ckpt)
    _truncate(ckpt)
    code, line = _run(
        "predict.py",
        predict,
        [f"checkpoint={ckpt}", f"inputs=[{photos / 'b_grey8.png'}]", f"out={tmp_path / 'o'}"],
        capsys,
    )
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
        (["aggregate", "bogus=1"], "benchmark.py aggregate: error: unknown key 'bogus'; keys: root, tables, reported,"),
        (["compare", "--bogus"], "benchmark.py compare: error: unknown option '--bogus'; keys: root, tables, by,"),
        (["render", "chek=true"], "benchmark.py render: error: unknown key 'chek'; keys: files, results, check"),
        (["compare", "select=newest"], "benchmark.py compare: error: select=newest: select is one of best, last,"),
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
        ("validation.py", validation, ["checkpoint={tmp}", "environment.data_root=/tmp/my", "folder"]),
        ("predict.py", predict, ["checkpoint={tmp}", "environment.data_root=/tmp/my", "folder", "inputs=[{tmp}]"]),
    ],
)
def test_key_value_entry_names_an_override_split_at_a_space(entry, module, argv, tmp_path, capsys):
    # predict.py: words that are existing paths are images, so the split-off word here is no file
    code, line = _run(entry, module, [a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and QUOTE_IT in line and "override environment.data_root" in line
