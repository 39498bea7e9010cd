"""validation.py corruptions=...: the override grammar, one-line errors, and a tiny end-to-end robustness run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import validation
from core.errors import run_entry as run_in_process
from datasets.corruptions import corruption_names
from inference.robustness import Protocol, corruption_overhead, pop_protocol
from tests.conftest import error_line, run_entry


def test_protocol_overrides_are_taken_out():
    protocol, rest = pop_protocol(["corruptions=all", "num_vis=0", "severities=[1,3]", "split=val"])
    assert protocol == Protocol(tuple(corruption_names()), (1, 3), 0) and len(protocol.corruptions) == 15
    assert rest == ["num_vis=0", "split=val"] and protocol.label == "15 benchmark corruptions"
    protocol, _ = pop_protocol(["corruptions=[gaussian_noise,motion_blur,jpeg_compression]", "corruption_seed=7"])
    assert protocol == Protocol(("gaussian_noise", "motion_blur", "jpeg_compression"), (1, 2, 3, 4, 5), 7)
    assert pop_protocol(["corruptions=fog", "severities=2"])[0] == Protocol(("fog",), (2,), 0)
    assert pop_protocol(["dataset.test.flip=true"]) == (None, ["dataset.test.flip=true"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["corruptions=[fog,nope]"], "unknown corruption 'nope'; valid: gaussian_noise, shot_noise"),
        (["corruptions=all", "severities=[1,6]"], "corruption severity 6 is not an integer in 1..5"),
        (["corruptions=all", "corruption_seed=a"], "corruption_seed='a' is not an integer"),
        (["severities=[1]"], "severities given without corruptions="),
        (["corruptions=[fog", "severities=[1]"], "corruptions=[fog: not a value or a list"),
    ],
)
def test_bad_protocol_is_one_line(overrides, message):
    with pytest.raises(ValueError) as e:
        pop_protocol(overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_validation_entry_unknown_corruption_exits_1_with_one_line(tmp_path):
    """Checked before the run is read: nothing is created in the run folder."""
    r = run_entry("validation.py", f"checkpoint={tmp_path}", "corruptions=[nope]")
    assert r.returncode == 1
    line = error_line(r.stderr, "validation.py")
    assert "unknown corruption 'nope'; valid: gaussian_noise" in line
    assert all(n in line for n in corruption_names())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_corruptions_two_severities_end_to_end(tiny_run, capsys):
    run = tiny_run
    args = [f"checkpoint={run}", "corruptions=[gaussian_noise,fog]", "severities=[1,3]", "num_vis=0"]
    assert run_in_process("validation.py", validation.main, args) == 0
    out = sorted((run / "validation").iterdir())[-1]
    printed = capsys.readouterr().out
    assert "mPC" in printed and "rPC" in printed and "gaussian_noise" in printed
    table = pd.read_csv(out / "robustness.csv")
    assert list(table.columns) == ["corruption", "severity", "mIoU", "aAcc", "seconds"]
    assert table[["corruption", "severity"]].values.tolist() == [
        ["gaussian_noise", 1],
        ["gaussian_noise", 3],
        ["fog", 1],
        ["fog", 3],
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mPC"] == pytest.approx(table["mIoU"].mean(), rel=1e-12)
    assert metrics["rPC"] == pytest.approx(table["mIoU"].mean() / metrics["mIoU"], rel=1e-12)
    per = table.groupby("corruption", sort=False)["mIoU"].mean()
    assert metrics["mIoU_corruption"] == pytest.approx(per.to_dict(), rel=1e-12)
    assert metrics["robustness"] == {
        "corruptions": ["gaussian_noise", "fog"],
        "severities": [1, 3],
        "seed": 0,
        "label": "gaussian_noise+fog",
    }
    record = json.loads((out / "robustness.json").read_text())
    assert record["clean"]["mIoU"] == metrics["mIoU"] and record["num_images"] == 3 and record["threads"] >= 1
    assert record["seconds_corruption"]["fog"] == pytest.approx(table["seconds"][table.corruption == "fog"].sum())

    # the same seed gives the same figures; the clean part equals a plain validation
    assert run_in_process("validation.py", validation.main, args) == 0
    again = sorted((run / "validation").iterdir())[-1]
    pd.testing.assert_frame_equal(
        pd.read_csv(again / "robustness.csv").drop(columns="seconds"), table.drop(columns="seconds")
    )
    assert run_in_process("validation.py", validation.main, [f"checkpoint={run}", "num_vis=0"]) == 0
    plain = json.loads((sorted((run / "validation").iterdir())[-1] / "metrics.json").read_text())
    assert plain["mIoU"] == metrics["mIoU"] and "mPC" not in plain


def test_corruptions_with_fit_temperature_is_one_line(tmp_path, capsys):
    argv = [f"checkpoint={tmp_path}", "fit_temperature=true", "corruptions=[fog]"]
    assert run_in_process("validation.py", validation.main, argv) == 1
    assert "fit_temperature=true and corruptions= are two commands" in error_line(
        capsys.readouterr().err, "validation.py"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_corruption_overhead_is_the_time_beyond_the_clean_pass_and_never_negative():
    # 233 images: 70 s corrupted vs 46.7 s clean -> 0.1 s per image; a clean pass slower than the corrupted one
    # (the load changed between them) measures nothing about the corruption
    assert corruption_overhead(70.0, 46.7, 233) == pytest.approx(23.3 / 233)
    assert corruption_overhead(46.7, 46.7, 233) == 0.0
    assert corruption_overhead(60.0, 272.4, 233) is None
