"""Everything the demo does, without any UI: load both backends, predict, score, rebuild.

The Gradio handlers in demo/tabs/ only translate between widgets and these functions,
so this module is tested directly and the app stays thin.
"""
from __future__ import annotations

import base64
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cgpa_rnn.data import missing_cohort_note, recorded_cohort
from cgpa_rnn.demo import environment
from cgpa_rnn.errors import UserError
from cgpa_rnn.explanation import Explanation, explanation_of, group_phrase
from cgpa_rnn.export.site import ORT_CDN
from cgpa_rnn.export.verify import TOLERANCE as PARITY_TOLERANCE
from cgpa_rnn.model.card import render_model_card
from cgpa_rnn.model.torch_predictor import TorchPredictor
from cgpa_rnn.predictor import (
    OnnxPredictor,
    PredictionError,
    Question,
    check_fresh,
    parse_grade,
)
from cgpa_rnn.rules import cumulative_average, inside_interval
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.scoring import (
    HindcastSummary,
    ScoredTable,
    score_csv,
    write_rows,
    write_scored_csv,
)
from cgpa_rnn.table import Limits
from cgpa_rnn.trajectory import Trajectory, trajectory_of

DEFAULT_RUN = Path(__file__).resolve().parent.parent / "model" / "default"
# What one upload may hold, checked while reading, before any scoring.
UPLOAD_LIMITS = Limits(bytes=2 * 1024 * 1024, rows=5000, columns=64, header_chars=4000)
# Scored files wait in the server's scored folder until Gradio has copied them for the download; a timer
# (demo/retention.py) deletes them after this.
SCORED_KEEP_SECONDS = 120
REBUILD_HINT = ("Rebuild it with `python -m demo --rebuild` (trains on the data set shipped in data/), "
                "or run `cgpa train`, `cgpa export` and `cgpa verify` on the directory.")


@dataclass
class Backends:
    run: RunDir
    torch: TorchPredictor
    onnx: OnnxPredictor

    @property
    def semesters(self) -> int:
        return self.onnx.semesters

    @property
    def semester_names(self) -> list[str]:
        return self.onnx.semester_names

    @property
    def interval_level(self) -> float:
        return self.onnx.interval_level  # what the served file says, not this code's training default

    @property
    def colleges(self) -> list[int]:
        return self.onnx.colleges

    @property
    def scale(self):
        return self.onnx.scale

    @property
    def groups(self):
        return self.onnx.groups

    def college_choices(self) -> list[str]:
        """The known groups as people write them (codes or text labels)."""
        return self.groups.names() if self.groups.text else [str(c) for c in self.colleges]


def browser_config(backends: Backends) -> dict:
    """What the page needs to run the same model.onnx in the visitor's browser: onnxruntime-web's
    address, the file itself (base64) and its number of semesters."""
    model = (backends.run / RunDir.ONNX).read_bytes()
    return {"ortBase": ORT_CDN, "model": base64.b64encode(model).decode(), "semesters": backends.semesters}


def load_backends(run: str | Path | RunDir = DEFAULT_RUN) -> Backends:
    """Both backends of a run, refusing a missing model or an ONNX file that is stale."""
    run = RunDir.of(run)
    try:
        onnx_backend = check_fresh(run)
        torch_backend = TorchPredictor(run)
    except UserError as error:
        raise UserError(f"The model in {run} cannot be served: {error}\n{REBUILD_HINT}") from None
    backends = Backends(run, torch_backend, onnx_backend)
    warm_up(backends)
    return backends


@dataclass
class StudentResult:
    semester: int  # the semester predicted
    actual: float | None  # its known grade when this is a hindcast
    torch_prediction: float
    onnx_prediction: float
    abs_diff: float
    low: float
    high: float
    torch_latency_us: float
    onnx_latency_us: float
    known_college: bool
    grades: list[float]  # what the model saw, NaN for missing
    college: int
    cumulative_average: float  # of the semesters before the predicted one and the prediction
    why: Explanation  # the served runtime's prediction as prior + the network's correction
    why_sentence: str
    ahead: Trajectory  # the rest of the degree from every grade given, to the scale's at-risk line
    ahead_sentence: str
    warning: str | None = None  # the grades are unlike the model's training cohort (Predictor.unfamiliar)


def field_errors(backends: Backends, grades: list, college, hindcast_last_given: bool = False) -> list[str | None]:
    """One message (or None) per grade field, then one for the college field."""
    messages: list[str | None] = []
    for t, value in enumerate(grades):
        try:
            parse_grade(value, backends.onnx.semester_label(t), backends.scale)
            messages.append(None)
        except PredictionError as error:
            messages.append(str(error))
    try:
        backends.onnx.parse_college(college)
        messages.append(None)
    except PredictionError as error:
        messages.append(str(error))
    if not any(messages):
        try:
            backends.onnx.question(grades, college, hindcast_last_given)
        except PredictionError as error:  # a whole-sequence problem: shown at the first grade field
            messages[0] = str(error)
    return messages


def _timed(backend, question: Question) -> tuple[tuple, float]:
    started = time.perf_counter()
    outputs = backend.predict_batch(question.row[None, :], np.array([question.college], dtype=np.int64))
    return tuple(float(o[0]) for o in outputs), (time.perf_counter() - started) * 1e6


def predict_student(backends: Backends, grades: list, college, hindcast_last_given: bool = False) -> StudentResult:
    """Validate once, run each backend once; raises PredictionError with the field's message.
    With the final semester given, or `hindcast_last_given`, the last grade given is predicted from the
    earlier ones (a hindcast)."""
    question = backends.onnx.question(grades, college, hindcast_last_given)
    (torch_prediction, _, _), torch_us = _timed(backends.torch, question)
    (prediction, low, high), onnx_us = _timed(backends.onnx, question)
    with_prediction = np.append(question.row[:question.semester - 1], prediction)
    # One run of explain.onnx for both: the why of the question asked, the trajectory from every grade given.
    given = question.row.copy()
    if question.actual is not None:
        given[question.semester - 1] = question.actual
    line = backends.scale.at_risk_line()
    details = backends.onnx.detail_batch(np.stack([question.row, given]), np.array([question.college] * 2),
                                         below=line)
    why = explanation_of(details, question.semester, backends.semester_names, question.actual)
    sentence = why.sentence(backends.onnx.semester_name(question.semester - 1), group_phrase(backends.onnx, college))
    ahead = trajectory_of(details, line, row=1)
    return StudentResult(question.semester, question.actual, torch_prediction, prediction,
                         abs(torch_prediction - prediction), low, high, torch_us, onnx_us,
                         question.college in backends.colleges, [float(g) for g in question.row],
                         question.college, cumulative_average(with_prediction), why, sentence, ahead,
                         ahead.sentence(backends.onnx), backends.onnx.unfamiliar(given))


def student_answer(backends: Backends, result: StudentResult) -> str:
    """One student's answer in words (Markdown): the forecast, the hindcast's error, the runtimes' agreement."""
    name = backends.onnx.semester_label(result.semester - 1)
    lines = [f"**{result.warning}**"] if result.warning else []
    lines.append(f"**{name}: {result.onnx_prediction:.2f}** ({backends.interval_level:.0%} interval "
                 f"{result.low:.2f} to {result.high:.2f}).")
    if result.actual is not None:
        inside = "inside" if inside_interval(result.low, result.actual, result.high) else "outside"
        lines.append(f"Hindcast: the actual {name} was **{result.actual:.2f}**, so the model would have "
                     f"been {abs(result.actual - result.onnx_prediction):.2f} off ({inside} the interval).")
    lines.append(f"Why: {result.why_sentence}")
    agreement = ("Both runtimes agree" if result.abs_diff <= PARITY_TOLERANCE
                 else f"**The runtimes differ by more than {PARITY_TOLERANCE:g}**")
    lines.append(f"{agreement}: |torch - onnxruntime| = {result.abs_diff:.1e}; this call took "
                 f"{result.torch_latency_us / 1000:.2f} ms in torch and {result.onnx_latency_us / 1000:.2f} ms in "
                 "onnxruntime.")
    later = [step for step in zip(result.ahead.semesters, result.ahead.median, result.ahead.low, result.ahead.high)
             if step[0] != result.semester]  # the semester predicted above is the path's first
    if later:
        steps = ", ".join(f"{backends.onnx.semester_name(s - 1)} {m:.2f} ({lo:.2f}-{hi:.2f})" for s, m, lo, hi in later)
        lines.append(f"Then, each forecast fed back as the next semester's grade (80% intervals, calibrated per "
                     f"horizon): {steps}.")
    lines.append(f"{result.ahead_sentence} (Equal credits assumed.)")
    if not result.known_college and backends.groups.column is not None:
        lines.append(f"This {backends.groups.column} was not seen in training: it uses the shared 'unknown' slot.")
    return "\n\n".join(lines)


def result_record(backends: Backends, result: StudentResult) -> dict:
    """A prediction for programs (the JSON endpoint): plain numbers, no formatting."""
    return {"semester": result.semester, "semester_name": backends.semester_names[result.semester - 1],
            "prediction": result.onnx_prediction, "low": result.low, "high": result.high,
            "interval_level": backends.interval_level, "hindcast_actual": result.actual,
            "backends": {"torch": {"prediction": result.torch_prediction, "latency_us": result.torch_latency_us},
                         "onnxruntime": {"prediction": result.onnx_prediction,
                                         "latency_us": result.onnx_latency_us}},
            "abs_diff": result.abs_diff, "known_college": result.known_college,
            "cumulative_average": result.cumulative_average, "scale": str(backends.scale),
            "why": {name: getattr(result.why, name) for name in WHY_KEYS} | {"sentence": result.why_sentence},
            "trajectory": result.ahead.to_dict() | {"sentence": result.ahead_sentence},
            "warning": result.warning}


# What a program is told of the why (the hidden states are in `cgpa predict --explain --json` and explain.onnx).
WHY_KEYS = ("prior", "correction", "group_mean", "deviation", "damping")


def warm_up(backends: Backends) -> None:
    """One prediction per runtime at start, so the first visitor sees the steady latency."""
    observed = ["7"] * (backends.semesters - 1)
    for _ in range(3):
        predict_student(backends, observed, backends.college_choices()[0])


def _scored_file(upload_name: str) -> Path:
    """A fresh file for a scored CSV, in a folder of its own (two uploads may share a name)."""
    return Path(tempfile.mkdtemp(dir=environment.folders().scored)) / f"scored-{Path(upload_name).stem[:60]}.csv"


def delete_old_scored_files(keep_seconds: float) -> int:
    """Delete scored files older than `keep_seconds` (Gradio has its copy by then); how many."""
    deleted = 0
    for folder in environment.folders().scored.iterdir():
        if time.time() - folder.lstat().st_mtime > keep_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            deleted += 1
    return deleted


def score_upload(backends: Backends, path: str | Path, threshold, hindcast_last_given: bool = False
                 ) -> tuple[ScoredTable, Path, str]:
    """Score an uploaded CSV with both backends: the table, a downloadable CSV and a summary.
    Students with a known final semester (every student's last one with `hindcast_last_given`) are
    scored by hindcast. Messages name the upload by its file name, never by where the server
    keeps it."""
    threshold = backends.onnx.risk_line(threshold)
    name = Path(path).name
    scored = score_csv(path, {"torch": backends.torch, "onnx": backends.onnx}, UPLOAD_LIMITS, name, hindcast_last_given,
                       trajectory=True, below=threshold)
    out = _scored_file(name)
    write_scored_csv(scored, out)
    ok = scored.ok
    warning = scored.warning(backends.onnx)
    summary = (f"**{warning}**\n\n" if warning else "") + (
               f"**{int(ok.sum())} of {plural(len(ok), 'student')} scored**, {plural(int((~ok).sum()), 'row')} with "
               f"an error. {scored.risk_sentence('**')}; the at-risk list has them all, most likely first.")
    if ok.any():  # with nothing scored there is no difference to report
        summary += f" Largest torch/onnx difference: {np.nanmax(scored.abs_diff):.2g}."
    hindcast = HindcastSummary.of(scored)
    if hindcast:
        summary += "\n\n" + hindcast.text()
    return scored, out, summary


def plural(count: int, noun: str) -> str:
    """'1 student', '2 students'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def hindcast_frame(scored: ScoredTable) -> pd.DataFrame | None:
    """The predicted-vs-actual chart's data (drawn by the browser); None without hindcasts."""
    rows = scored.hindcast
    if not rows.any():
        return None
    actual, predicted = scored.actual[rows], scored.served[rows]
    inside = inside_interval(scored.low[rows], actual, scored.high[rows])
    return pd.DataFrame({"actual": actual.round(3), "predicted": predicted.round(3),
                         "interval": np.where(inside, f"inside {scored.interval_level:.0%} interval", "outside")})


def at_risk_table(scored: ScoredTable) -> pd.DataFrame:
    """Every scored student's final CGPA and chance of ending below the line, named as the file names them:
    those whose final CGPA is forecast first, most likely below first; then the finished (nothing left to
    forecast), whose CGPA is the outcome."""
    ok, finished, ahead = scored.ok, scored.finished, scored.ahead
    chance = f"P(below {scored.below:g})"  # before the CGPA's numbers: in sight on a phone
    table = pd.DataFrame({"student": scored.students(), "status": np.where(finished, "finished", "forecast"),
                          chance: ahead["probability_below"].round(3), "final CGPA": ahead["final"].round(2),
                          "low": ahead["final_low"].round(2), "high": ahead["final_high"].round(2)})[ok]
    order = np.lexsort((table["final CGPA"], -table[chance], table["status"] == "finished"))
    return table.iloc[order].reset_index(drop=True)


def write_at_risk(table: pd.DataFrame, scored_file: Path) -> Path:
    """The at-risk list beside the scored file, for the download (spreadsheet-safe, written atomically)."""
    path = scored_file.with_name(scored_file.name.replace("scored-", "at-risk-", 1))
    write_rows(path, list(table.columns), ([None if pd.isna(v) else v for v in row]
                                           for row in table.itertuples(index=False)))
    return path


def display_table(scored: ScoredTable) -> pd.DataFrame:
    """The scored rows for the screen: the student and the prediction first (what a phone shows
    before any scrolling), then what it was measured against, the grades and the group, the second
    runtime, and last a row's reason when it could not be scored (mostly empty). Columns are named
    for reading (DISPLAY_NAMES); the downloaded file keeps the file's own columns and names."""
    table = pd.DataFrame(scored.rows(), columns=scored.columns())
    table.insert(0, "student", scored.students())
    header = scored.header
    table = table[["student", "pred_torch", "low", "high", "semester_predicted", "actual", "abs_error",
                   *header.semesters, *([header.college] if header.college else []), "pred_onnx", "abs_diff", "error"]]
    for column in ("pred_torch", "pred_onnx", "low", "high", "actual", "abs_error"):
        table[column] = table[column].astype(float).round(3)
    table["abs_diff"] = table["abs_diff"].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.1e}")
    return table.rename(columns=DISPLAY_NAMES)


# The scored file's column names as the screen shows them: words that wrap on a phone.
DISPLAY_NAMES = {"semester_predicted": "semester predicted", "pred_torch": "prediction (torch)",
                 "pred_onnx": "onnx runtime", "abs_diff": "torch - onnx", "abs_error": "abs error"}


def examples(backends: Backends, count: int = 4) -> list[list]:
    """A few students from the model's training data with their last semester hidden."""
    source = backends.torch.record.data.source
    cohort = recorded_cohort(source)
    if cohort is None:
        print(f"note: no examples: {missing_cohort_note(source)}", file=sys.stderr)
        return []
    rows, names = [], dict(zip(cohort.groups.codes, cohort.groups.names()))
    for i in np.linspace(0, len(cohort) - 1, count * 3).astype(int):
        grades = cohort.grades[i]
        if np.isnan(grades[-1]) or np.isnan(grades[:-1]).all():
            continue
        hidden = len(rows) < count - 1  # the last example keeps its final semester: a hindcast
        shown = ["" if np.isnan(g) else f"{g:.2f}" for g in grades[:-1]] + ["" if hidden else f"{grades[-1]:.2f}"]
        rows.append(shown + [names.get(int(cohort.college[i]), str(int(cohort.college[i])))])
        if len(rows) == count:
            break
    return rows


def model_card(run: RunDir) -> str:
    """The card without its Hub metadata block, which is for machines, not for the page."""
    card = render_model_card(run)
    return card.split("\n---\n", 1)[1] if card.startswith("---\n") else card
