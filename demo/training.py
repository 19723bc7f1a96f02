"""Train, export and verify a model, for `python -m demo --rebuild` and for a visitor's own cohort.

A visitor's model is built here into a fresh directory; demo/visitors.py decides whose it is,
when it may be trained and when it is deleted. No UI here: demo/tabs/own_model.py calls these
functions.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cgpa_rnn.data import Cohort, load_cohort, load_csv
from cgpa_rnn.demo.service import Backends, load_backends
from cgpa_rnn.model.config import COVERAGE_KEY, INTERVAL_LEVEL, TrainConfig
from cgpa_rnn.model.metrics import best_held_out_baseline
from cgpa_rnn.data.cohort import check_trainable
from cgpa_rnn.model.train import train_run
from cgpa_rnn.errors import DataError, UserError
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.table import Limits

# What a visitor's training file may hold, checked while reading, before any training.
TRAIN_LIMITS = Limits(bytes=1024 * 1024, rows=3000, columns=40, header_chars=4000)
MAX_SEMESTERS = 12
TRAIN_SECONDS = 60  # the training budget; export and verification take a few seconds more
# Shares of a progress display at each step: training, then export, verification and loading.
TRAINING_SHARE, VERIFYING_SHARE, LOADING_SHARE = 0.85, 0.93, 0.97

Report = Callable[[float, str], None]  # (share of the work done, what is happening) for a progress display


def build_model(cohort: Cohort, run: str | Path, config: TrainConfig, command: str, data: str | Path | None = None,
                report: Report | None = None) -> tuple[dict, dict]:
    """Train into `run`, export it, verify the export against torch and write its card; returns
    the held-out metrics and the parity report, refusing an export that does not match. `data` is the training CSV
    when it is not the shipped one, so verification also checks the students' own prefixes.
    Progress goes to `report`, or without it to the console."""
    from cgpa_rnn.export.onnx_export import export_onnx
    from cgpa_rnn.export.verify import verify
    from cgpa_rnn.model.card import write_model_card

    steps = [(0.0, f"training on {cohort.describe_source()}"), (TRAINING_SHARE, "exporting to ONNX"),
             (VERIFYING_SHARE, "verifying ONNX against torch")]

    def step(k: int) -> None:
        share, what = steps[k]
        report(share, what) if report else print(f"[{k + 1}/{len(steps)}] {what}", flush=True)

    step(0)
    from model.trainer import ShareDone

    callbacks = (ShareDone(lambda share: report(TRAINING_SHARE * share, f"{steps[0][1]}: {share:.0%} of the epochs "
                                                                         "at most")),) if report else ()
    metrics = train_run(cohort, config, run, progress=report is None, command=command, callbacks=callbacks)
    step(1)
    export_onnx(run)
    step(2)
    parity = verify(run, data=data)
    write_model_card(run)
    if not parity["passed"]:
        raise UserError(f"the ONNX model in {run} does not match torch (largest difference "
                        f"{parity['max_abs_diff']:.1e}); see {RunDir.of(run) / RunDir.PARITY}")
    return metrics, parity


def rebuild(run: str | Path, data: str | Path | None = None) -> None:
    """`python -m demo --rebuild`: the served model made again, printing progress as it goes."""
    from cgpa_rnn.export.verify import format_parity

    _, parity = build_model(load_cohort(data), run, TrainConfig(), "python -m demo --rebuild", data)
    print(format_parity(parity), flush=True)


@dataclass
class OwnModel:
    """A model a visitor trained on their own cohort, and what the page shows of it."""

    directory: Path  # everything of this model: the uploaded copy and the run directory
    backends: Backends
    name: str  # the uploaded file's name
    metrics: dict
    parity: dict
    used: float = field(default_factory=time.monotonic)

    @property
    def downloads(self) -> list[Path]:
        """model.onnx, the parity report (the copy without students' grades) and the card."""
        return [self.backends.run / RunDir.ONNX, self.directory / RunDir.PARITY, self.backends.run / RunDir.CARD]


def parity_without_records(parity: dict) -> dict:
    """The parity report as a visitor may download it: verification also runs the training
    students' own prefixes, so a worst case can be one of them; it is described by its shape
    (how many semesters given, which college) instead of quoted."""
    outputs = {}
    for name, entry in parity["outputs"].items():
        entry = dict(entry)
        worst = entry.pop("worst_input", None)
        if worst is not None:
            entry["worst_input_shape"] = {
                "semesters_given": sum(g is not None for g in worst["grades"]), "of": len(worst["grades"]),
                "note": "the grades themselves are left out: they may be a student's record"}
        outputs[name] = entry
    return {**parity, "outputs": outputs}


def read_training_file(path: str | Path, name: str) -> Cohort:
    """The uploaded cohort, refused with one message naming the file when it cannot be trained on."""
    cohort = load_csv(path, limits=TRAIN_LIMITS, name=name)
    if cohort.semesters > MAX_SEMESTERS:
        raise DataError(f"{name}: {cohort.semesters} semesters is over the {MAX_SEMESTERS}-semester limit")
    check_trainable(cohort)
    return cohort


def train_own_model(path: str | Path, root: Path, report: Report = lambda share, what: None) -> OwnModel:
    """Train, export and verify a model on an uploaded CSV, in a fresh directory under `root`."""
    name = Path(path).name
    cohort = read_training_file(path, name)
    directory = Path(tempfile.mkdtemp(prefix="own-", dir=root))
    try:
        data = directory / name
        shutil.copyfile(path, data)  # Gradio deletes its upload copies on its own schedule
        run = directory / "model"
        command = f"cgpa train --data {name} --out model --max-seconds {TRAIN_SECONDS}"
        metrics, parity = build_model(cohort, run, TrainConfig(max_seconds=TRAIN_SECONDS), command, data, report)
        RunDir(directory).write_json(RunDir.PARITY, parity_without_records(parity))
        report(LOADING_SHARE, "loading both runtimes")
        return OwnModel(directory, load_backends(run), name, metrics, parity)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


ERROR_COLUMNS = ["predicting", "held-out examples", "MAE, this model", "MAE, best baseline", "best baseline",
                 "MAE, repeat previous", f"{INTERVAL_LEVEL:.0%} interval coverage"]


def error_table(model: OwnModel) -> list[list]:
    """Held-out error of the model against the baselines, a row per target (ERROR_COLUMNS)."""
    rows = []
    for target, title in (("next", "next semester"), ("last", "final semester")):
        entry = model.metrics["test"].get(target)
        if not entry or not entry["model"]["n"]:
            continue
        mine, best = entry["model"], best_held_out_baseline(entry)
        rows.append([title, mine["n"], round(mine["mae"], 3), round(entry[best]["mae"], 3), best,
                     round(entry["persistence"]["mae"], 3), f"{mine[COVERAGE_KEY]:.0%}"])
    return rows
