"""Scoring a cohort CSV with one or more backends, row by row.

A row that cannot be scored (a bad grade, nothing to predict, a bad college code)
gets its reason in the `error` column; it never stops the other rows. Used by
`cgpa predict --csv` and by the demo's cohort tab.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data.artifacts import atomic_path
from data.cohort import COLLEGE_COLUMNS, DataError, find_column, read_frame, semester_columns
from export.predictor import PredictionError, Predictor

ADDED_COLUMNS = ("pred_torch", "pred_onnx", "abs_diff", "low", "high", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def score_frame(frame: pd.DataFrame, backends: dict[str, Predictor], where: str = "upload") -> pd.DataFrame:
    """The input rows with ADDED_COLUMNS; `backends` maps 'torch'/'onnx' to predictors."""
    columns = list(frame.columns)
    semesters = semester_columns(columns)
    if not semesters:
        raise DataError(f"{where}: no semester columns found in the header {columns}; expected 1st, 2nd, ...")
    colleges = find_column(columns, COLLEGE_COLUMNS)
    if not colleges:
        raise DataError(f"{where}: no 'College Code' column in the header {columns}")
    reference = next(iter(backends.values()))
    if len(semesters) > reference.semesters:
        raise DataError(f"{where}: {len(semesters)} semester columns, but the model knows {reference.semesters}")
    rows = np.full((len(frame), reference.semesters), np.nan, dtype=np.float32)
    codes = np.zeros(len(frame), dtype=np.int64)
    errors = [""] * len(frame)
    for i, record in enumerate(frame.astype(str).to_dict("records")):
        try:
            rows[i], codes[i] = reference.validate([record[c] for c in semesters], record[colleges[0]])
        except PredictionError as error:
            errors[i] = f"line {i + 2}: {error}"
    scored = np.array([not e for e in errors])
    result = frame.copy()
    for column in ADDED_COLUMNS[:-1]:
        result[column] = np.nan
    outputs = {name: backend.predict_batch(rows[scored], codes[scored]) for name, backend in backends.items()}
    for name, (prediction, _, _) in outputs.items():
        result.loc[scored, f"pred_{name}"] = prediction
    if {"torch", "onnx"} <= outputs.keys():
        result.loc[scored, "abs_diff"] = np.abs(outputs["torch"][0] - outputs["onnx"][0])
    served = outputs.get("onnx", next(iter(outputs.values())))  # the interval of the runtime that serves
    result.loc[scored, "low"], result.loc[scored, "high"] = served[1], served[2]
    result["error"] = errors
    return result


def score_csv(path: str | Path, backends: dict[str, Predictor]) -> pd.DataFrame:
    frame, _ = read_frame(path)
    return score_frame(frame, backends, where=str(path))


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe."""
    def clean(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
    return frame.apply(lambda column: column if pd.api.types.is_numeric_dtype(column) else column.map(clean))


def write_scored_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as temporary:
        spreadsheet_safe(frame).to_csv(temporary, index=False, float_format="%.6g")
