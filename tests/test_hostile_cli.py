"""The CLI and the runtime against careless and hostile input (issue 18): readers that bound
before they allocate, strict values, the user's paths never clobbered, model metadata checked
on load, and `cgpa predict --csv` streamed with the meaning of the row-by-row reference."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import ROOT, SHIPPED, cgpa

from cgpa_rnn.errors import DataError
from cgpa_rnn.predictor import OnnxPredictor
from cgpa_rnn.scoring import score_csv, write_scored_csv
from cgpa_rnn.values import DECIMAL, grade_value

HEADER = "1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\n"


def one_line_error(result, *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


# Readers bound before they allocate ---------------------------------------------------------

@pytest.mark.parametrize("column, expected", [
    ("0th", "column '0th' names semester 0"),
    ("sem0", "column 'sem0' names semester 0"),
    ("99999999999th", "column '99999999999th' names a semester past the limit of 20"),
    ("21st", "column '21st' names a semester past the limit of 20"),
])
def test_semester_numbers_are_checked_at_the_header(tmp_path, column, expected):
    path = tmp_path / "cohort.csv"
    path.write_text(f"1st,2nd,{column},College Code,Roll\n7,7,7,115,1\n")  # the 277-byte-file case, smaller
    one_line_error(cgpa("data", "--data", str(path)), str(path), expected)
    scored = cgpa("predict", str(SHIPPED), "--csv", str(path), "--out", str(tmp_path / "out.csv"))
    one_line_error(scored, expected)
    assert not (tmp_path / "out.csv").exists()


def test_two_college_columns_are_an_error_naming_both(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text("1st,2nd,College Code,college,Roll\n7,7,115,116,1\n")
    expected = "2 college columns ('College Code', 'college'); keep one"
    one_line_error(cgpa("data", "--data", str(path)), expected)
    one_line_error(cgpa("predict", str(SHIPPED), "--csv", str(path), "--out", str(tmp_path / "o.csv")), expected)


def test_a_cohort_that_cannot_train_gets_one_sentence(tmp_path):
    rows = [f"{7 + i % 3},,,,,115,M,{i},,16" for i in range(30)]
    rows[0] = "7,8,,,,115,M,0,,16"  # one student with two grades: training used to crash in quantile()
    path = tmp_path / "one-pair.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    result = cgpa("train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet")
    one_line_error(result, "too few students with two grades", "need at least 20, found 1")
    assert not (tmp_path / "run").exists()
    few = tmp_path / "few.csv"
    few.write_text(HEADER + "\n".join(f"7,8,,,,115,M,{i},,16" for i in range(5)) + "\n")
    one_line_error(cgpa("evaluate", "--data", str(few), "--out", str(tmp_path / "eval")),
                   "5 students are too few to train and measure a model; at least 20 are needed")


# Strict values --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["1e1", "inf", "-inf", "nan1", "0x10", "1_0", "٣", "７", "7,5", "1.2.3", "+", ".",
                                  "\u00a07", "Infinity", "0b1"])
def test_only_ascii_decimal_notation_is_a_number(text):
    with pytest.raises(ValueError, match="expected a grade point"):
        grade_value(text)
    assert not DECIMAL.fullmatch(text.strip(" \t\r\n"))


def test_decimal_notation_and_blank_spellings_are_accepted():
    assert [grade_value(t) for t in ("7", "7.25", ".5", "7.", " 8 ", "0", "10")] == [7, 7.25, .5, 7, 8, 0, 10]
    assert all(np.isnan(grade_value(t)) for t in ("", "nan", "NaN", "na", "N/A", None))


def test_the_cli_refuses_numbers_in_other_notations(tmp_path):
    for grades in ("7,1e1", "7,inf", "7,٣", "7,0x10", "7,1_0"):
        one_line_error(cgpa("predict", str(SHIPPED), "--backend", "onnx", "--grades", grades, "--college", "115"),
                       "2nd semester (0-10): expected a grade point")
    one_line_error(cgpa("predict", str(SHIPPED), "--backend", "onnx", "--grades", "7", "--college", "1e2"),
                   "college: expected an integer college code")
    source = tmp_path / "cohort.csv"
    source.write_text("1st,2nd,College Code\n7,1e1,115\n7,inf,115\n7,٣,115\n7,8,1e2\n7,8,115\n")
    out = tmp_path / "scored.csv"
    result = cgpa("predict", str(SHIPPED), "--csv", str(source), "--out", str(out))
    assert result.returncode == 0 and "scored 1 of 5 rows" in result.stdout, result.stderr
    errors = [row[-1] for row in csv.reader(io.StringIO(out.read_text(encoding="utf-8")))][1:]
    assert [e.split(":")[1].strip() for e in errors[:3]] == ["2nd semester (0-10)"] * 3 and "college" in errors[3]
    assert errors[4] == ""


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("true", True), ("FALSE", False), ("Yes", True), ("no", False), ("1", True),
    ("0", False), ("on", True), ("OFF", False), (1, True), (0, False), (" true ", True)])
def test_booleans_in_the_usual_spellings(value, expected):
    from cgpa_rnn.values import boolean_value

    assert boolean_value(value) is expected


@pytest.mark.parametrize("value", ["", "maybe", "2", "falsy", "t", None, 2, 0.5, "نعم"])
def test_anything_else_is_not_a_boolean(value):
    from cgpa_rnn.values import boolean_value, parse_bool

    with pytest.raises(ValueError, match="expected true or false"):
        boolean_value(value)
    with pytest.raises(DataError, match="^hindcast_last_given: expected true or false"):
        parse_bool(value, "hindcast_last_given")


# The user's paths are safe -----------------------------------------------------------------

@pytest.fixture()
def cohort_csv(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(HEADER + "7.1,6.8,,7.3,,115,M,,1,16\n")
    return path


def test_predict_out_is_never_the_input_a_folder_a_link_or_a_device(cohort_csv, tmp_path):
    original = cohort_csv.read_bytes()
    predict = ("predict", str(SHIPPED), "--csv", str(cohort_csv), "--out")
    one_line_error(cgpa(*predict, str(cohort_csv)), "is the input file")
    one_line_error(cgpa(*predict, str(tmp_path / "." / cohort_csv.name)), "is the input file")
    os.link(cohort_csv, tmp_path / "hard-link.csv")
    one_line_error(cgpa(*predict, str(tmp_path / "hard-link.csv")), "is the input file")
    assert cohort_csv.read_bytes() == original
    one_line_error(cgpa(*predict, str(tmp_path)), "a folder is in the way")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_error(cgpa(*predict, str(fifo)), "not a regular file or folder (a device, FIFO or socket)")
    one_line_error(cgpa(*predict, "/dev/null"), "not a regular file or folder")
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep me\n")
    (tmp_path / "link.csv").symlink_to(target)
    one_line_error(cgpa(*predict, str(tmp_path / "link.csv")), "is a symbolic link")
    assert target.read_text() == "keep me\n" and (tmp_path / "link.csv").is_symlink()
    (tmp_path / "input-link.csv").symlink_to(cohort_csv)  # reading through a link is fine
    written = cgpa("predict", str(SHIPPED), "--csv", str(tmp_path / "input-link.csv"), "--out",
                   str(tmp_path / "scored.csv"))
    assert written.returncode == 0, written.stderr
    again = cgpa(*predict, str(tmp_path / "scored.csv"))  # an earlier output is replaced
    assert again.returncode == 0 and (tmp_path / "scored.csv").stat().st_size > 0


def test_run_directories_are_never_links_or_special_files(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")
    for out, expected in ((tmp_path / "link", "is a symbolic link"), (tmp_path / "fifo", "not a regular file"),
                          ("/dev/null", "not a regular file")):
        one_line_error(cgpa("train", "--synthetic", "30", "--out", str(out), "--quiet"), expected)
        one_line_error(cgpa("evaluate", "--synthetic", "30", "--out", str(out), "--quiet"), expected)
    assert not any((tmp_path / "real").iterdir())


def test_web_out_refuses_a_folder_that_is_not_its_site(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    one_line_error(cgpa("web", str(SHIPPED), "--out", str(folder)), "not a site `cgpa web` wrote", "--force")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    one_line_error(cgpa("web", str(SHIPPED), "--out", str(SHIPPED)), "is the input")
    forced = cgpa("web", str(SHIPPED), "--out", str(folder), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (folder / "notes.txt").read_text() == "mine\n" and (folder / "index.html").is_file()
    site = tmp_path / "site"
    for _ in range(2):  # a site it wrote is rebuilt without --force
        built = cgpa("web", str(SHIPPED), "--out", str(site))
        assert built.returncode == 0, built.stderr
    (tmp_path / "site-link").symlink_to(site)
    one_line_error(cgpa("web", str(SHIPPED), "--out", str(tmp_path / "site-link")), "is a symbolic link")


# Model metadata validated once, on load ----------------------------------------------------

def _with_metadata(source, target, **changes):
    proto = onnx.load(source)
    kept = {p.key: p.value for p in proto.metadata_props}
    kept.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        kept.pop(key, None)
    del proto.metadata_props[:]
    for key, value in kept.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, target)
    return target


@pytest.mark.parametrize("changes, expected", [
    ({"semesters": "five"}, "metadata 'semesters' is not a whole number between 1 and 20"),
    ({"semesters": "4294967296"}, "metadata 'semesters' is not a whole number between 1 and 20"),
    ({"semesters": "7"}, "metadata 'semesters' is 7 but the graph's grades input has 5 columns"),
    ({"colleges": None}, "metadata 'colleges' is missing"),
    ({"colleges": "[115, "}, "metadata 'colleges': not valid JSON"),
    ({"colleges": "[" * 100_000 + "]" * 100_000}, "metadata 'colleges': nested deeper than 32 levels"),
    ({"colleges": "[" * 40 + "]" * 40}, "metadata 'colleges': nested deeper than 32 levels"),
    ({"colleges": "[true, 116]"}, "metadata 'colleges' is not a JSON list of non-negative integer"),
    ({"semester_names": '["1st"]'}, "metadata 'semester_names' is not a JSON list of 5 names"),
    ({"checkpoint_sha256": "x"}, "metadata 'checkpoint_sha256' is not a SHA-256"),
    ({"data_source": "[]"}, "metadata 'data_source' is not a JSON object"),
    ({"interval_level": "80%"}, "metadata 'interval_level' is not a fraction between 0 and 1"),
])
def test_malformed_metadata_is_refused_naming_the_key(tmp_path, changes, expected):
    run = tmp_path / "run"
    run.mkdir()
    _with_metadata(SHIPPED / "model.onnx", run / "model.onnx", **changes)
    shutil.copyfile(SHIPPED / "model.pt", run / "model.pt")
    one_line_error(cgpa("predict", str(run), "--backend", "onnx", "--grades", "7,7", "--college", "115"), expected)


@pytest.mark.parametrize("name", ["metrics.json", "config.json"])
def test_a_run_folders_json_is_read_with_limits(run_copy, name):
    """Deep nesting (a RecursionError in json) and size, in one line naming the file."""
    (run_copy / name).write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(cgpa("verify", str(run_copy)), f"{name}: nested deeper than 32 levels")
    (run_copy / name).write_text(" " * (9 << 20))
    one_line_error(cgpa("verify", str(run_copy)), f"{name}: 9,437,184 bytes is over the 8,388,608-byte limit")


def test_cgpa_web_reads_the_metadatas_metrics_with_limits(tmp_path, run_copy):
    _with_metadata(run_copy / "model.onnx", run_copy / "model.onnx", metrics="[" * 100_000 + "]" * 100_000)
    built = cgpa("web", str(run_copy), "--out", str(tmp_path / "site"))
    assert built.returncode == 0 and "Traceback" not in built.stderr, built.stderr  # the metrics left out


def test_the_interval_level_comes_from_the_file(tmp_path):
    stated = _with_metadata(SHIPPED / "model.onnx", tmp_path / "ninety.onnx", interval_level="0.9")
    assert OnnxPredictor(stated).interval_level == 0.9
    older = _with_metadata(SHIPPED / "model.onnx", tmp_path / "older.onnx", interval_level=None)
    assert OnnxPredictor(older).interval_level == 0.8  # from the `outputs` text, as files exported before it say
    code = """
import sys
from cgpa_rnn import cli
from cgpa_rnn.predictor import OnnxPredictor
from cgpa_rnn.scoring import score_csv
from cgpa_rnn.streaming import stream_scored_csv
print(sorted(m for m in sys.modules if m.startswith(("cgpa_rnn.model", "cgpa_rnn.data", "cgpa_rnn.export",
                                                     "cgpa_rnn.demo", "torch", "pandas"))))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_verify_fails_a_model_whose_metadata_disagrees_with_its_checkpoint(run_copy):
    from cgpa_rnn.errors import ParityError
    from cgpa_rnn.export.verify import verify

    _with_metadata(run_copy / "model.onnx", run_copy / "model.onnx", colleges="[1, 2, 3]")
    result = cgpa("verify", str(run_copy), "--samples", "100")
    assert result.returncode == 1 and "FAILED" in result.stdout, result.stdout + result.stderr
    assert "METADATA: metadata 'colleges' is [1, 2, 3] but the checkpoint has" in result.stdout
    with pytest.raises(ParityError) as failed:
        verify(run_copy, samples=100)
    assert failed.value.report["passed"] is False and failed.value.report["metadata_mismatches"]
    assert json.loads((run_copy / "parity.json").read_text())["passed"] is False


# Streaming scoring: a file of any length, in blocks ------------------------------------

MESSY = ("\ufeff1st,2nd,3rd,4th,5th,College Code,Gender,Roll,Roll no.,Subject Code\r\n"
         "7.1,6.8,,7.3,,115,M,,1,16\r\n"
         "7,7,7,7,7,116,F,3,,16\r\n"
         "6.5,,,,,999,F,=HYPERLINK(1),,16\r\n"
         ",,,,,,,,,\r\n"
         "   ,  ,,,,,,,,\r\n"
         "7.1,abc,,,,115,M,,2,16\r\n"
         "\"7.5\",8, 6 ,,,115,M,,\"multi\nline\",16\r\n"
         "8,8,8,8,,115,F,,\"a, b\",16\r\n"
         "-1,8,,,,115,M,,5,16\r\n"
         "+7,8,,,,115,M,,6,16\r\n"
         "7,8,,,,115.0,M,,7,16\r\n"
         "7,8,,,,115.5,M,,7,16\r\n"
         "7,8,,,,99999999999999999999,M,,7,16\r\n"
         "nan,8,NA,,,115,M,,8,16\r\n"
         ",,,,,115,M,,9,16\r\n"
         ",,,,9,115,M,,10,16\r\n"
         "7,8\r\n"
         "10,0,10,0,,0,M,,11,16\r\n"
         "9.999999,0.0001,1.,.5,,241,,,12,\r\n"
         "7,8,,,,115,Male,é,13,16")  # no newline at the end

ONLY = "a hindcast needs earlier semesters to predict it from"
# Each student row of MESSY as scored (the two blank ones are left out): its cells as written back (stripped,
# spreadsheet-safe), then (semester predicted, the error's start) as scored, and as scored with --hindcast.
MESSY_SCORED = [
    (["7.1", "6.8", "", "7.3", "", "115", "M", "", "1", "16"], ("5", ""), ("4", "")),
    (["7", "7", "7", "7", "7", "116", "F", "3", "", "16"], ("5", ""), ("5", "")),
    (["6.5", "", "", "", "", "999", "F", "'=HYPERLINK(1)", "", "16"], ("2", ""),
     ("", f"line 4: grades: only 1st semester is given; {ONLY}")),
    (["7.1", "abc", "", "", "", "115", "M", "", "2", "16"], ("", "line 7: 2nd semester (0-10): expected a grade point"),
     ("", "line 7: 2nd semester (0-10): expected a grade point")),
    (["7.5", "8", "6", "", "", "115", "M", "", "multi\nline", "16"], ("4", ""), ("3", "")),
    (["8", "8", "8", "8", "", "115", "F", "", "a, b", "16"], ("5", ""), ("4", "")),
    (["'-1", "8", "", "", "", "115", "M", "", "5", "16"], ("", "line 11: 1st semester (0-10): grade -1 is outside"),
     ("", "line 11: 1st semester (0-10): grade -1 is outside")),
    (["'+7", "8", "", "", "", "115", "M", "", "6", "16"], ("3", ""), ("2", "")),
    (["7", "8", "", "", "", "115.0", "M", "", "7", "16"], ("3", ""), ("2", "")),
    (["7", "8", "", "", "", "115.5", "M", "", "7", "16"], ("", "line 14: college: expected a non-negative integer"),
     ("", "line 14: college: expected a non-negative integer")),
    (["7", "8", "", "", "", "99999999999999999999", "M", "", "7", "16"],
     ("", "line 15: college: expected a non-negative integer college code below 2**53"),
     ("", "line 15: college: expected a non-negative integer college code below 2**53")),
    (["nan", "8", "NA", "", "", "115", "M", "", "8", "16"], ("3", ""),
     ("", f"line 16: grades: only 2nd semester is given; {ONLY}")),
    (["", "", "", "", "", "115", "M", "", "9", "16"], ("", "line 17: grades: no grade given"),
     ("", "line 17: grades: no grade given")),
    (["", "", "", "", "9", "115", "M", "", "10", "16"], ("", f"line 18: grades: only 5th semester is given; {ONLY}"),
     ("", f"line 18: grades: only 5th semester is given; {ONLY}")),
    (["7", "8", "", "", "", "", "", "", "", ""], ("", "line 19: college: expected an integer college code"),
     ("", "line 19: college: expected an integer college code")),
    (["10", "0", "10", "0", "", "0", "M", "", "11", "16"], ("5", ""), ("4", "")),
    (["9.999999", "0.0001", "1.", ".5", "", "241", "", "", "12", ""], ("5", ""), ("4", "")),
    (["7", "8", "", "", "", "115", "Male", "é", "13", "16"], ("3", ""), ("2", "")),
]


def _csv_rows(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def assert_same_rows(streamed, whole) -> None:
    """The same lines, cell for cell; numbers may differ in the last digit, because onnxruntime's
    last bit depends on how many rows share a batch (a block, or the whole file)."""
    assert streamed.read_bytes().count(b"\r\n") == whole.read_bytes().count(b"\r\n")
    for line, (got, expected) in enumerate(zip(_csv_rows(streamed), _csv_rows(whole)), start=1):
        assert len(got) == len(expected), line
        for cell, wanted in zip(got, expected):
            if cell != wanted:
                assert DECIMAL.fullmatch(cell) and DECIMAL.fullmatch(wanted), (line, cell, wanted)
                assert abs(float(cell) - float(wanted)) <= 1e-4, (line, cell, wanted)


@pytest.mark.parametrize("hindcast", [False, True])
@pytest.mark.parametrize("block", [20_000, 2, 1])
def test_a_messy_file_is_scored_row_by_row_in_blocks_of_any_size(tmp_path, hindcast, block):
    from cgpa_rnn.scoring import ADDED_COLUMNS
    from cgpa_rnn.streaming import stream_scored_csv

    source, out = tmp_path / "messy.csv", tmp_path / "streamed.csv"
    source.write_bytes(MESSY.encode("utf-8"))
    backends = {"onnx": OnnxPredictor(SHIPPED / "model.onnx")}
    result = stream_scored_csv(source, out, backends, hindcast, block_rows=block)
    header, *rows = _csv_rows(out)
    assert header == HEADER.strip().split(",") + list(ADDED_COLUMNS)
    assert len(rows) == len(MESSY_SCORED) and out.read_bytes().count(b"\r\n") == len(rows) + 1  # CRLF lines
    for row, (cells, plain, hindcasts) in zip(rows, MESSY_SCORED):
        semester, error = hindcasts if hindcast else plain
        assert row[:10] == cells and row[10] == semester and row[-1].startswith(error) and bool(row[-1]) == bool(error)
        torch, onnx, difference, low, high, actual, abs_error = row[11:18]
        assert not torch and not difference  # onnxruntime alone
        assert all(DECIMAL.fullmatch(v) for v in (onnx, low, high)) if semester else not (onnx or low or high)
        known = [c for c in cells[:5] if c not in ("", "nan", "NA")]
        hindcast_row = semester and (hindcast or cells[4] != "")
        assert actual == (f"{float(known[-1]):.6g}" if hindcast_row else "") and bool(abs_error) == bool(hindcast_row)
    assert (result.rows, result.scored) == (18, 9 if hindcast else 11)
    write_scored_csv(score_csv(source, backends, hindcast_last_given=hindcast), tmp_path / "whole.csv")
    if block > len(rows):  # one block: the batch and so the bytes of the file scored whole
        assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert_same_rows(out, tmp_path / "whole.csv")


def test_every_row_means_what_predictor_question_makes_of_it():
    """The table is asked a column at a time; each row's answer and each refusal's message are question()'s."""
    from cgpa_rnn.predictor import PredictionError
    from cgpa_rnn.scoring import score_table
    from cgpa_rnn.table import table_from_rows

    model = OnnxPredictor(SHIPPED / "model.onnx")
    rng = np.random.default_rng(7)
    grades = ["", "", "", "7", "7.25", ".5", "10", "0", "nan", "NA", "n/a", "abc", "-1", "11", "1e1", "+7", "٣"]
    colleges = ["115", "116", "115.0", "999", "0", "", "x", "115.5", "-3", "99999999999999999999"]
    cells = [[*rng.choice(grades, 5), rng.choice(colleges)] for _ in range(3000)]
    table = table_from_rows(["1st", "2nd", "3rd", "4th", "5th", "College Code"], cells, "random")
    for hindcast in (False, True):
        scored = score_table(table, {"onnx": model}, hindcast)
        for i, row in enumerate(cells):
            try:
                question = model.question(row[:5], row[5], hindcast)
            except PredictionError as error:
                assert scored.errors[i] == f"line {i + 2}: {error}" and scored.semester[i] == 0
                continue
            assert scored.errors[i] == "" and scored.semester[i] == question.semester
            assert scored.codes[i] == question.college
            np.testing.assert_array_equal(scored.seen[i], question.row)
            assert scored.actual[i] == question.actual or (question.actual is None and np.isnan(scored.actual[i]))


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tests" / "fixtures" / "cohorts").glob("*.csv")))
def test_every_careless_fixture_streams_as_it_reads_whole(tmp_path, name):
    """The streamed file and the file read whole have one reader: the same rows, or the same one-line refusal."""
    from cgpa_rnn.streaming import stream_scored_csv

    source = ROOT / "tests" / "fixtures" / "cohorts" / name
    backends = {"onnx": OnnxPredictor(SHIPPED / "model.onnx")}
    try:
        write_scored_csv(score_csv(source, backends), tmp_path / "whole.csv")
    except DataError as refused:
        with pytest.raises(DataError) as streamed:
            stream_scored_csv(source, tmp_path / "streamed.csv", backends, block_rows=2)
        assert str(streamed.value) == str(refused)
        return
    stream_scored_csv(source, tmp_path / "streamed.csv", backends, block_rows=2)
    assert_same_rows(tmp_path / "streamed.csv", tmp_path / "whole.csv")


def test_streamed_scoring_of_random_students_is_the_file_scored_whole(tmp_path):
    from cgpa_rnn.export.inputs import random_students
    from cgpa_rnn.streaming import stream_scored_csv

    grades, college = random_students(3000, 5, [115, 116, 165, 241], seed=5)
    lines = ["College Code,1st,2nd,3rd,4th,5th"] + [
        ",".join([str(c)] + ["" if np.isnan(g) else f"{g:.2f}" for g in row]) for row, c in zip(grades, college)]
    source = tmp_path / "random.csv"
    source.write_text("\n".join(lines) + "\n")
    backends = {"onnx": OnnxPredictor(SHIPPED / "model.onnx")}
    write_scored_csv(score_csv(source, backends), tmp_path / "whole.csv")
    stream_scored_csv(source, tmp_path / "streamed.csv", backends, block_rows=700)
    assert_same_rows(tmp_path / "streamed.csv", tmp_path / "whole.csv")


@pytest.mark.parametrize("separator", [",", ";"])
def test_streamed_scoring_passes_over_blank_lines_of_every_kind(tmp_path, separator):
    """Empty, separators only, spaces, CRLF: left out, the rows around them as the file read whole has them."""
    from cgpa_rnn.export.inputs import random_students
    from cgpa_rnn.streaming import stream_scored_csv

    grades, college = random_students(400, 5, [115, 116], seed=6)
    blanks = ["", separator * 5, "  ", separator * 9, "\t", "\r"]
    lines = [separator.join(["College Code", "1st", "2nd", "3rd", "4th", "5th"])]
    for k, (row, code) in enumerate(zip(grades, college)):
        lines += [blanks[k % len(blanks)]] * (k % 4)
        lines.append(separator.join([str(code)] + ["" if np.isnan(g) else f"{g:.2f}" for g in row]))
    source = tmp_path / "blanks.csv"
    source.write_text("\n".join(lines) + "\n")
    backends = {"onnx": OnnxPredictor(SHIPPED / "model.onnx")}
    write_scored_csv(score_csv(source, backends), tmp_path / "whole.csv")
    result = stream_scored_csv(source, tmp_path / "streamed.csv", backends, block_rows=7)
    assert_same_rows(tmp_path / "streamed.csv", tmp_path / "whole.csv")
    assert result.rows == 400


def test_numbers_are_written_as_python_formats_them():
    from cgpa_rnn.scoring import number_cells

    rng = np.random.default_rng(0)
    values = np.concatenate([
        rng.uniform(0, 10, 5000).astype(np.float32), 10.0 ** rng.uniform(-7, 7, 2000),
        [0, 10, 1, 0.1, 9.999996, 9.9999996, 1e-4, 9.9999999e-5, 1e-5, 999999.5, 1e6, -1.5, -0.0, np.nan, np.inf,
         100, 120, 0.00012]]).astype(np.float64)
    assert number_cells(values) == ["" if np.isnan(v) else f"{v:.6g}" for v in values]
    assert number_cells(np.array([])) == [] and number_cells(np.array([np.nan])) == [""]


@pytest.mark.parametrize("content, expected", [
    (HEADER + "7,8,,,,115,M,,1,16,extra\n", "line 2: 11 cells but the header has 10 columns"),
    (HEADER + '7,8,,,,115,M,,"1,16\n8,8\n', "line 3: not a readable CSV"),
    ("\n" + HEADER + "7,8,,,,115,M,,1,16\n", "the file is empty"),
    (" \t\r\n\n  ", "the file is empty"),
    (HEADER + '7,8,,,,115,M,,"' + "x" * (5 << 20) + "\n", "line 2: a record runs past 1,024 KB (a quote that is never "
                                                            "closed?)"),
    (HEADER.encode() + b"7,8,,,,115,M,,\xff,16\n", "not UTF-8 text"),
    (HEADER + "7,8,,,,115,M,,\0,16\n", "contains NUL bytes"),
    ("", "the file is empty"),
    (HEADER, "a header but no student rows"),
    (HEADER + "\n,,,\n", "a header but no student rows"),
])
def test_streamed_scoring_refuses_an_unreadable_file_in_one_line(tmp_path, content, expected):
    from cgpa_rnn.streaming import stream_scored_csv

    source = tmp_path / "bad.csv"
    source.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "scored.csv"
    with pytest.raises(DataError, match=re.escape(expected)):
        stream_scored_csv(source, out, {"onnx": OnnxPredictor(SHIPPED / "model.onnx")}, block_rows=1)
    one_line_error(cgpa("predict", str(SHIPPED), "--csv", str(source), "--out", str(out)), expected)
    assert not out.exists()


def test_a_quiet_training_states_its_config_in_one_line(tmp_path):
    run = tmp_path / "run"
    result = cgpa("train", "--synthetic", "40", "--epochs", "2", "--hidden", "5", "--ensemble", "1", "--quiet",
                  "--out", str(run))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("training on SYNTHETIC cohort") and "{" not in result.stdout
    assert "elman cell; " in first and first.endswith(f" (in full: {run}/config.json)"), first
    assert {"hidden 5", "ensemble 1", "max-epochs 2"} <= set(first.split("; ", 1)[1].split(" (in full")[0]
                                                             .split(", ")), first
    assert json.loads((run / "config.json").read_text())["model"]["hidden"] == 5


def test_publish_out_is_checked_like_every_out(tmp_path):
    hub = tmp_path / "hub"
    written = cgpa("publish", str(SHIPPED), "--out", str(hub))
    assert written.returncode == 0 and "nothing was uploaded" in written.stdout, written.stderr
    (tmp_path / "hub-link").symlink_to(hub)
    one_line_error(cgpa("publish", str(SHIPPED), "--out", str(tmp_path / "hub-link")), "is a symbolic link")
    one_line_error(cgpa("publish", str(SHIPPED), "--out", str(SHIPPED)), "is the input")
    assert (SHIPPED / "model.pt").is_file() and hub.is_dir()


def test_demo_on_a_port_in_use_is_one_line_before_anything_loads():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = cgpa("demo", "--port", str(taken.getsockname()[1]))
    one_line_error(result, "another program is already listening on it")


def test_verify_refuses_a_model_whose_metadata_disagrees_with_its_graph(run_copy):
    _with_metadata(run_copy / "model.onnx", run_copy / "model.onnx", semesters="7")
    one_line_error(cgpa("verify", str(run_copy), "--samples", "50"),
                   "metadata 'semesters' is 7 but the graph's grades input has 5 columns")


def _running(pid: int) -> bool:  # a zombie has ended; only its parent's reaping is left
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    return found


def _stopped(command: list[str], ready, cwd: Path = ROOT) -> list[int]:
    """Start `cgpa COMMAND`, wait until ready(its pid) holds, SIGTERM it; the children it had then
    that still run 30 s after it ended (killed, so a failed test leaves none)."""
    import signal
    import time

    started = subprocess.Popen([sys.executable, "-m", "cgpa_rnn", *command], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready(started.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ready(started.pid), f"cgpa {' '.join(command)} never got going"
    children = _children(started.pid)
    time.sleep(1)  # at work
    started.send_signal(signal.SIGTERM)
    assert started.wait(timeout=60) != 0
    deadline = time.monotonic() + 30
    while any(_running(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [c for c in children if _running(c)]
    for c in left:
        os.kill(c, signal.SIGKILL)
    return left


@pytest.mark.slow
def test_stopping_cgpa_evaluate_stops_its_workers(tmp_path):
    """SIGTERM to `cgpa evaluate` used to leave its worker processes computing."""
    command = ["evaluate", "--synthetic", "400", "--cells", "gru", "--seeds", "1", "--quiet", "--out",
               str(tmp_path / "run")]
    assert not _stopped(command, lambda pid: len(_children(pid)) >= 2), "workers still running after the stop"


@pytest.mark.slow
def test_stopping_cgpa_train_leaves_no_partial_run_folder(tmp_path):
    """SIGTERM mid-training used to leave the staging folder (.run.new-PID) until the next training."""
    command = ["train", "--synthetic", "3000", "--quiet", "--out", str(tmp_path / "run")]
    assert not _stopped(command, lambda pid: (tmp_path / f".run.new-{pid}").is_dir())
    assert list(tmp_path.iterdir()) == []  # neither the staged files nor a run folder


@pytest.mark.slow
def test_stopping_the_demo_benchmark_stops_its_server(tmp_path):
    """SIGTERM to `cgpa bench --demo` used to leave the demo server it started serving."""
    left = _stopped(["bench", str(SHIPPED), "--demo"], lambda pid: bool(_children(pid)))
    assert not left, "the benchmark's demo server still runs after the benchmark was stopped"


@pytest.mark.slow
def test_stopping_the_training_benchmark_stops_its_training():
    """SIGTERM to `cgpa bench --train` ends the training it runs in a process of its own."""
    left = _stopped(["bench", "--train", "--train-sizes", "20000"], lambda pid: bool(_children(pid)))
    assert not left, "the benchmark's training still runs after the benchmark was stopped"
