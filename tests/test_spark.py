"""Scoring in Spark (cgpa_rnn.spark) gives the numbers `cgpa predict --csv` writes, row for row, in a
local Spark session; the docs' Spark snippet runs as written. Needs the [spark] extra and a Java
runtime: skipped without them on a developer's machine, required in CI (.ci/run installs Java)."""
from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, ROOT, SHIPPED, need

from cgpa_rnn.data import SHIPPED_DATA
from cgpa_rnn.errors import DataError

pytestmark = pytest.mark.slow
CLI = Path(sys.executable).parent / "cgpa"  # the environment's console script, as a user runs it
NUMBERS = ("prediction", "low", "high")
# Rows no real file lacks: a grade off the scale, text where a grade goes, a blank college, a student
# with only the last semester (nothing to hindcast from), a gap, and the "nan" a spreadsheet writes.
MESSY = [
    {"1st": "11", "2nd": "7.2", "College Code": "115"},
    {"1st": "6.5", "2nd": "abc", "College Code": "115"},
    {"1st": "7.1", "2nd": "6.8", "College Code": ""},
    {"5th": "7.9", "College Code": "116"},
    {"1st": "7.1", "3rd": "6.9", "4th": "7.3", "College Code": "116"},
    {"1st": "8.0", "2nd": "nan", "3rd": "7.7", "College Code": "999"},
]


def _session_or_skip():
    if importlib.util.find_spec("pyspark") is None:
        if IN_CI:
            pytest.fail("CI must run this test, but pyspark is not installed (the [test] extra brings it)")
        pytest.skip("pyspark is not installed (the [spark] extra)")
    need("java")


@pytest.fixture(scope="module")
def spark_jvm():
    """Skipped without pyspark or Java; whichever session is running at the end is stopped."""
    _session_or_skip()
    from pyspark.sql import SparkSession

    yield
    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


@pytest.fixture()
def spark(spark_jvm):
    """The module's local session, made again on the same JVM when a test (the docs' snippet) stopped it."""
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("cgpa-rnn tests")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.memory", "512m").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """The shipped data set and the messy rows, columns reordered (the group first, the semesters
    backwards), each row numbered in a `row` column to join on (roll numbers repeat across colleges)."""
    with open(SHIPPED_DATA, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle)) + MESSY
    columns = ["College Code", "5th", "4th", "3rd", "2nd", "1st", "Gender", "Roll", "Roll no.", "Subject Code", "row"]
    path = tmp_path_factory.mktemp("spark") / "cohort.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows({**record, "row": str(line)} for line, record in enumerate(records, start=2))
    return path


@pytest.fixture(scope="module")
def cli_scored(cohort, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("cli") / "scored.csv"
    done = subprocess.run([str(CLI), "predict", str(SHIPPED), "--csv", str(cohort), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        return {record["row"]: record for record in csv.DictReader(handle)}


@pytest.mark.parametrize("infer_schema", [False, True], ids=["text cells", "typed columns"])
def test_spark_scores_every_row_as_the_cli_does(spark, cohort, cli_scored, infer_schema):
    from cgpa_rnn.spark import score_dataframe

    frame = spark.read.csv(str(cohort), header=True, inferSchema=infer_schema).repartition(3)  # workers share rows
    scored = {str(row["row"]): row.asDict() for row in score_dataframe(frame, SHIPPED).collect()}
    assert scored.keys() == cli_scored.keys()
    differences = []
    for key, expected in cli_scored.items():
        got = scored[key]
        # The CLI writes six significant digits: Spark's float32, written the same way, must be those digits.
        for name, column in zip(NUMBERS, ("pred_onnx", "low", "high")):
            assert ("" if got[name] is None else f"{got[name]:.6g}") == expected[column], (key, name)
            if got[name] is not None:
                differences.append(abs(got[name] - float(expected[column])))
        assert str(got["semester_predicted"] or "") == expected["semester_predicted"], key
        # The CLI names the line; otherwise the reason is the same words.
        assert (got["error"] or "") == re.sub(r"^line \d+: ", "", expected["error"]), key
    assert sum(bool(r["error"]) for r in cli_scored.values()) >= 5  # the messy rows were refused, by both
    assert max(differences) <= 5e-6  # the CLI's printed rounding; the digits themselves are equal above


def test_a_missing_group_column_is_refused_on_the_driver_by_name(spark):
    from cgpa_rnn.spark import score_dataframe

    frame = spark.createDataFrame([("7.1", "6.8")], ["1st", "2nd"])
    with pytest.raises(DataError, match="no 'College Code' column"):
        score_dataframe(frame, SHIPPED)


def test_the_docs_spark_snippet_runs_as_written(spark, monkeypatch, capsys):
    from test_readme import fenced

    (snippet,) = fenced("python", "Scoring in Spark")
    monkeypatch.chdir(ROOT)  # the snippet names the shipped model and data by their paths in the repository
    exec(compile(snippet, "docs/embedding.md", "exec"), {})  # its builder finds the session running, then stops it
    printed = capsys.readouterr().out
    assert re.search(r"\| *115\| *17020\.0\| *5\| *\d\.\d+", printed), printed
    assert "177 of 178 students scored" in printed, printed  # one row of the data set has no grade at all
