"""Results records (core/results.py) and their rendering into the README and docs (report/render.py)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from benchmarking.cli import run_subcommand
from core.results import ResultsError, load_record, parse_record
from report.render import REPO, render, render_claims, render_files, render_table, render_text
from report.render import main as render_main

MEASURED = {
    "date": "2026-12-04",
    "commit": "abc1234",
    "hardware": "CPU X [avx2]",
    "threads": 2,
    "torch": "2.14.1",
    "load": "idle",
    "commands": ["python benchmark.py x=1"],
}


def record(**changes):
    d = {
        "name": "speed",
        "caption": "Two backends.",
        "measured": dict(MEASURED),
        "columns": [
            {"key": "backend", "header": "backend"},
            {"key": "speedup", "header": "speed-up", "format": ".2f", "best": "max"},
            {"key": "delta_mIoU", "header": "ΔmIoU", "format": "+.2f"},
        ],
        "rows": [
            {"backend": "int8", "speedup": 4.11, "delta_mIoU": -1.24},
            {"backend": "bf16", "speedup": 3.05, "delta_mIoU": 0.01},
        ],
        "claims": [
            {
                "text": "{backend} is {speedup:.2f}x within {delta_mIoU:+.2f} points.",
                "when": [["speedup", ">=", 4.0], ["abs_delta_mIoU", "<=", 0.5]],
                "otherwise": "No backend is 4x within 0.5 points.",
            }
        ],
    }
    d.update(changes)
    return d


def squeeze(markdown: str) -> str:
    """Markdown with the column padding removed (``|  a   |`` -> ``| a |``)."""
    return re.sub(r" *\| *", " | ", markdown).replace("\n ", "\n").strip().replace(" |\n", " |\n")


def test_table_bolds_the_best_and_the_caption_states_the_hardware_once():
    rec = parse_record(record())
    assert [squeeze(line).strip() for line in render_table(rec).splitlines()] == [
        "| backend | speed-up | ΔmIoU |",
        "| :---------- | -----------: | --------: |",
        "| int8 | **4.11** | -1.24 |",
        "| bf16 | 3.05 | +0.01 |",
    ]
    text = render(rec)
    assert text.count("CPU X [avx2]") == 1 and "2 threads, torch 2.14.1, load idle" in text
    assert "```bash\npython benchmark.py x=1\n```" in text
    assert "python benchmark.py" not in render(rec, commands=False)


def test_threads_in_words_read_as_words_in_the_caption():
    rec = parse_record(record(measured={**MEASURED, "threads": "not recorded"}))
    assert "threads not recorded, torch 2.14.1" in render(rec) and "not recorded threads" not in render(rec)
    assert "2 threads, torch" in render(parse_record(record()))
    assert "1 thread, torch" in render(parse_record(record(measured={**MEASURED, "threads": 1})))


def test_a_claim_is_rendered_only_where_one_row_shows_every_condition():
    # 4.11x misses the accuracy, the accurate row misses the speed: the claim is not made
    assert render_claims(parse_record(record())) == ["No backend is 4x within 0.5 points."]
    rows = record()["rows"] + [{"backend": "int8+float ends", "speedup": 4.02, "delta_mIoU": -0.09}]
    assert render_claims(parse_record(record(rows=rows))) == ["int8+float ends is 4.02x within -0.09 points."]


def test_a_claims_block_holds_the_claims_and_how_they_were_measured_not_the_table():
    text = "<!-- results:speed claims -->\nold\n<!-- /results:speed -->\n"
    new, changed = render_text(text, {"speed": parse_record(record())})
    body = new.split("-->\n", 1)[1].rsplit("<!--", 1)[0]
    assert changed == ["speed"] and "|" not in body and "python benchmark.py" not in body
    assert body.startswith("No backend is 4x within 0.5 points.\n\n*Measured ")
    assert f"on {MEASURED['hardware']}, 2 threads" in body and "record `results/speed.yaml`.*" in body


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"measured": {k: v for k, v in MEASURED.items() if k != "hardware"}}, "measured.hardware is missing"),
        ({"rows": [{"backend": "x", "speedup": 1.0}]}, "rows[0]: no value for column 'delta_mIoU'"),
        (
            {"rows": [{"backend": "x", "speedup": 1.0, "delta_mIoU": 0.0, "hardware": "Y"}]},
            "rows[0] sets hardware: a table has one hardware profile",
        ),
        ({"claims": [{"text": "t", "when": [["speedup", "=>", 4]]}]}, "is not [key, op, value]"),
    ],
)
def test_a_malformed_record_fails_in_one_line_naming_file_and_key(tmp_path, change, message):
    path = tmp_path / "speed.yaml"
    path.write_text(yaml.safe_dump(record(**change)))
    with pytest.raises(ResultsError) as e:
        load_record(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value) and "\n" not in str(e.value)


def test_render_replaces_blocks_and_check_finds_a_changed_cell(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "speed.yaml").write_text(yaml.safe_dump(record(), allow_unicode=True))
    page = tmp_path / "page.md"
    page.write_text("# Speed\n\n<!-- results:speed -->\nold table\n<!-- /results:speed -->\n\nText after.\n")
    assert render_files([page], results, check=True) == [f"{page}: results:speed"]
    assert "old table" in page.read_text()  # check=true writes nothing
    assert render_main([f"files=[{page}]", f"results={results}"]) == 0
    text = page.read_text()
    assert "| int8 | **4.11** | -1.24 |" in squeeze(text) and text.endswith("<!-- /results:speed -->\n\nText after.\n")
    assert render_files([page], results, check=True) == []  # idempotent
    page.write_text(text.replace("3.05", "3.50"))  # a hand edit of a figure
    capsys.readouterr()
    assert render_main([f"files=[{page}]", f"results={results}", "check=true"]) == 1
    assert f"{page}: results:speed differs from its record" in capsys.readouterr().err
    with pytest.raises(ResultsError, match="names no record"):
        render_text("<!-- results:nope -->\n<!-- /results:nope -->", {}, "x.md")


def test_the_readme_and_docs_tables_equal_their_records():
    """Every results block of README.md and docs/ is the rendering of its record under results/."""
    assert render_files(check=True) == []
    names = {p.stem for p in (REPO / "results").glob("*.yaml")}
    used = set()
    for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        used |= {n for n in names if f"<!-- results:{n}" in path.read_text()}
    assert used == names, f"records rendered nowhere: {sorted(names - used)}"


def test_compare_record_renders_the_experiments_table(tmp_path):
    from tests.benchmarking.test_compare import A, B, write_summary

    root = tmp_path / "logs"
    for i, v in enumerate(A):
        write_summary(root, f"unet/{i}", ["model.arch=Unet"], i + 1, v / 100)
    for i, v in enumerate(B):
        write_summary(root, f"fpn/{i}", ["model.arch=FPN"], i + 1, v / 100)
    out = tmp_path / "results" / "study.yaml"
    argv = [f"root={root}", f"tables={tmp_path / 't'}", "baseline=model.arch=Unet", f"record={out}"]
    assert run_subcommand("compare", argv) == 0
    rec = load_record(out)
    rows = {r["config"]: r for r in rec.rows}
    assert rows["model.arch=Unet"]["runs"] == "71.20, 70.40, 72.90" and rows["model.arch=FPN"]["n"] == 4
    assert rows["model.arch=FPN"]["delta_mean"] == pytest.approx(sum(B) / 4 - sum(A) / 3, abs=1e-4)
    assert rec.measured["commands"][-1] == "python benchmark.py compare " + " ".join(argv)
    assert rec.measured["commands"][0] == "python main.py model.arch=FPN  # seed=1, 2, 3, 4"
    assert "val split, best epoch of each run" in rec.caption
    assert "| model.arch=Unet | 3 | 71.50 ± " in squeeze(render_table(rec))
    assert json.loads(json.dumps(rec.rows))  # plain data


def test_a_claim_condition_on_text_compares_equal_text():
    rows = record()["rows"] + [
        {"backend": "int8+float ends", "speedup": 4.02, "delta_mIoU": -0.09},
        {"backend": "bf16", "speedup": 4.50, "delta_mIoU": 0.01},
    ]
    rec = record(rows=rows)
    rec["claims"][0]["when"] = rec["claims"][0]["when"] + [["backend", "==", "bf16"]]
    assert render_claims(parse_record(rec)) == ["bf16 is 4.50x within +0.01 points."]
    rec["claims"][0]["when"][-1] = ["backend", "==", "fp16"]
    assert render_claims(parse_record(rec)) == ["No backend is 4x within 0.5 points."]
    rec["claims"][0]["when"][-1] = ["backend", ">=", "bf16"]  # order on text: never met
    assert render_claims(parse_record(rec)) == ["No backend is 4x within 0.5 points."]


def test_a_claim_on_a_key_no_row_has_is_refused_naming_it():
    rec = record()
    rec["claims"][0]["when"] = [["sped_up", ">=", 4.0]]
    with pytest.raises(ResultsError, match=r"claims\[0\]\.when: no row has the key 'sped_up'"):
        parse_record(rec)
