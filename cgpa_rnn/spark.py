"""Scoring a cohort table in Spark: the rows `cgpa predict --csv` scores, scored where a registrar's
records already live (the `[spark]` extra; executors need this package beside Spark's pandas and pyarrow).

    scored = score_dataframe(spark.read.table("registrar.cohort"), "model/default")

The DataFrame is in the data's wide format, one row per student: the model's semester columns and
its group column by name, as in the CSV. Each row means what it means to `cgpa predict --csv`: the
columns are found by the same rule (scoring.scoring_header), and each row goes through
Predictor.question, the reference every scorer of the project follows (grades checked on the model's
scale, text group labels to codes, a student whose final semester is known scored by hindcast). A row
that cannot be scored gets its reason in `error` and null numbers; one bad record in forty million
never stops the job. A missing column is refused on the driver, before any job starts.

How it runs: the model file is shipped once per executor with SparkContext.addFile, under a name that
carries its SHA-256 (two models never share a name); each Python worker opens one onnxruntime session
per model file and keeps it in a module-level dict keyed by that hash, so every later task and batch
the worker runs reuses it. pyspark.ml.functions.predict_batch_udf hands the rows over as numpy arrays.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

try:
    import pandas as pd
    from pyspark import SparkFiles
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as F
    from pyspark.sql.types import FloatType, IntegerType, StringType, StructField, StructType
except ImportError as error:
    raise ModuleNotFoundError(f'cgpa_rnn.spark needs the [spark] extra ({error.name} is not installed); from a '
                              'clone of the repository: pip install ".[spark]"', name=error.name) from None

from cgpa_rnn.errors import DataError, UserError
from cgpa_rnn.predictor import OnnxPredictor, PredictionError, check_fresh
from cgpa_rnn.rundir import atomic_path, file_sha256
from cgpa_rnn.scoring import scoring_header

# What each row gains: the semester predicted (a hindcast's is its last known one), the median forecast
# and the 80% interval as the model's float32, and the reason a row was not scored.
OUTPUT = StructType([StructField("semester_predicted", IntegerType()), StructField("prediction", FloatType()),
                     StructField("low", FloatType()), StructField("high", FloatType()),
                     StructField("error", StringType())])
OUTPUT_COLUMNS = tuple(OUTPUT.names)
BATCH_ROWS = 10_000  # Spark's own Arrow batch size: one onnxruntime call per batch it sends
_SCORED = "__cgpa_rnn_scored"  # the UDF's struct, before it is spread into OUTPUT_COLUMNS

_PREDICTORS: dict[str, OnnxPredictor] = {}  # in each Python worker: model file's SHA-256 -> its one session


def score_dataframe(frame, model: str | os.PathLike, hindcast_last_given: bool = False):
    """`frame` with OUTPUT_COLUMNS added. `model`: a run directory (its model.onnx is refused when it is
    stale, as `cgpa predict` does) or a model.onnx file. `hindcast_last_given`: `--hindcast`, every
    student's last known semester predicted from the earlier ones."""
    # Opened here first, so a stale or foreign file and a missing column are refused before any job.
    predictor = check_fresh(model) if Path(model).is_dir() else OnnxPredictor(model)
    header = scoring_header(frame.columns, "the DataFrame", predictor)
    taken = [name for name in (*OUTPUT_COLUMNS, _SCORED) if name in frame.columns]
    if taken:
        raise UserError(f"the DataFrame already has column(s) {', '.join(taken)}, which scoring adds; rename them")
    sha256 = file_sha256(predictor.path)
    shipped = _ship(frame.sparkSession.sparkContext, predictor.path, sha256)
    # The cells as Spark holds them (text, doubles, integers, null), in the header's order: the model's
    # rules read each one, so no cast can refuse or reinterpret a value first.
    cells = [*header.semesters, *([header.college] if header.college else [])]
    inputs = F.struct(*[F.col(_quoted(column)).alias(f"c{k}") for k, column in enumerate(cells)])
    scorer = predict_batch_udf(_predict_function(shipped, sha256, header.numbers, bool(header.college),
                                                 hindcast_last_given),
                               return_type=OUTPUT, batch_size=BATCH_ROWS)
    # One column holds the UDF's struct, which is then spread: Spark runs the model once per row.
    scored = frame.withColumn(_SCORED, scorer(inputs))
    return scored.select(*[F.col(_quoted(c)) for c in frame.columns],
                         *[F.col(f"{_SCORED}.{name}").alias(name) for name in OUTPUT_COLUMNS])


def _quoted(column: str) -> str:
    """A column name as Spark's parser reads it literally: "Roll no." is one column, not a field of Roll."""
    return "`" + column.replace("`", "``") + "`"


def _ship(context, path: Path, sha256: str) -> str:
    """Add the model file to the Spark job under a name of its hash; returns that name. Spark refuses one
    name for two paths, so the copy is made at one place per hash on the driver."""
    name = f"cgpa-rnn-{sha256}.onnx"
    copy = Path(tempfile.gettempdir()) / "cgpa-rnn-spark" / name
    # A file of that name in a shared temporary folder is not trusted: it is shipped only if it is the model.
    if not copy.is_file() or file_sha256(copy) != sha256:
        with atomic_path(copy) as temporary:
            shutil.copyfile(path, temporary)
    context.addFile(str(copy))  # the same path again is a no-op
    return name


def _predict_function(shipped: str, sha256: str, numbers: list[int], grouped: bool, hindcast_last_given: bool):
    """predict_batch_udf's loader: runs in each Python worker, returns the batch function."""

    def load():
        predictor = _PREDICTORS.get(sha256)
        if predictor is None:
            path = SparkFiles.get(shipped)
            if file_sha256(path) != sha256:  # what reached the worker is checked, not assumed
                raise DataError(f"{path}: the model file the executor got is not the one shipped (SHA-256 differs)")
            predictor = _PREDICTORS[sha256] = OnnxPredictor(path)  # one intra-op thread
        width = len(numbers) + grouped

        def predict(cells: np.ndarray) -> dict[str, np.ndarray]:
            # One input column of one field arrives squeezed to 1-D; every other batch is [rows, width].
            return score_cells(predictor, np.asarray(cells, dtype=object).reshape(-1, width), numbers, grouped,
                               hindcast_last_given)

        return predict

    return load


def score_cells(predictor: OnnxPredictor, cells: np.ndarray, numbers: list[int], grouped: bool,
                hindcast_last_given: bool = False) -> dict[str, np.ndarray]:
    """[rows, columns] cells (semester `numbers[k]` in column k, the group's cell last when `grouped`) ->
    OUTPUT_COLUMNS as arrays, the way scoring.score_table reads a file's rows."""
    count = len(cells)
    rows = np.full((count, predictor.semesters), np.nan, dtype=np.float32)
    codes = np.zeros(count, dtype=np.int64)
    semester = np.zeros(count, dtype=np.int64)
    errors: list[str | None] = [None] * count
    for i, record in enumerate(cells):
        values = [""] * predictor.semesters  # a semester the table lacks is blank, as in a CSV
        for number, cell in zip(numbers, record):
            values[number - 1] = _cell(cell)
        try:
            question = predictor.question(values, _cell(record[-1]) if grouped else "", hindcast_last_given)
        except PredictionError as error:
            errors[i] = str(error)
            continue
        rows[i], codes[i], semester[i] = question.row, question.college, question.semester
    scored = semester > 0
    outputs = np.full((3, count), np.nan, dtype=np.float32)  # NaN reaches Spark as null
    if scored.any():
        outputs[:, scored] = predictor.predict_batch(rows[scored], codes[scored])
    predicted = pd.array(semester, dtype="Int32")  # nullable: a row not scored has no semester
    predicted[~scored] = pd.NA
    return {"semester_predicted": predicted,
            "prediction": outputs[0], "low": outputs[1], "high": outputs[2], "error": np.array(errors, dtype=object)}


def _cell(value):
    """A Spark value as a CSV cell means it: null (None, or NaN in a numeric column) is a blank cell."""
    return "" if not isinstance(value, str) and pd.isna(value) else value
