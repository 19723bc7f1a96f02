"""The pipeline (export/pipeline.py) as the demo runs it: `python -m demo --rebuild`, and a
visitor's own cohort trained, exported and verified.

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

from cgpa_rnn.data import Cohort, CohortFormat, load_cohort, load_csv
from cgpa_rnn.data.cohort import check_trainable
from cgpa_rnn.demo.service import Backends, load_backends
from cgpa_rnn.errors import DataError, UserError
from cgpa_rnn.export import pipeline
from cgpa_rnn.model.config import COVERAGE_KEY, INTERVAL_LEVEL, TrainConfig
from cgpa_rnn.model.record import RunRecord
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.table import Limits

# What a visitor's training file may hold, checked while reading, before any training.
TRAIN_LIMITS = Limits(bytes=1024 * 1024, rows=3000, columns=40, header_chars=4000)
MAX_SEMESTERS = 12
TRAIN_SECONDS = 60  # the training budget; export and verification take a few seconds more
# The share of a progress display the build takes; loading both runtimes is the rest.
BUILD_SHARE = 0.97
OWN_MODEL_STEPS = ("train", "export", "verify")

Report = Callable[[float, str], None]  # (share of the work done, what is happening) for a progress display


def rebuild(run: str | Path, data: str | Path | None = None) -> None:
    """`python -m demo --rebuild`: the served model made again with every file it held (evaluation and
    bench included, measured as they were), printing progress as it goes. The recorded config and
    commands are kept: they are still the way to reproduce the files."""
    from cgpa_rnn.export.verify import format_parity

    run = RunDir.of(run)
    try:
        record = RunRecord.read(run)
    except UserError:  # a damaged record is what a rebuild is for
        record = None
    evaluation = run.read_json(RunDir.EVALUATION) or {}
    config = record.config if record else TrainConfig()
    commands = {"train": record.command if record else "python -m demo --rebuild",
                "evaluate": evaluation.get("command", "python -m demo --rebuild")}
    built = pipeline.build(load_cohort(data), run.path, config, pipeline.steps_held(run), data, commands)
    print(format_parity(built.parity), flush=True)


@dataclass
class OwnModel:
    """A model a visitor trained on their own cohort, and what the page shows of it."""

    directory: Path  # everything of this model: the uploaded copy and the run directory
    backends: Backends
    name: str  # the uploaded file's name
    record: RunRecord
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
    described = {}
    for part in ("outputs", "explanation"):
        described[part] = {}
        for name, entry in parity.get(part, {}).items():
            entry = dict(entry)
            worst = entry.pop("worst_input", None)
            if worst is not None:
                entry["worst_input_shape"] = {
                    "semesters_given": sum(g is not None for g in worst["grades"]), "of": len(worst["grades"]),
                    "note": "the grades themselves are left out: they may be a student's record"}
            described[part][name] = entry
    return {**parity, **described}


def read_training_file(path: str | Path, name: str, form: CohortFormat = CohortFormat()) -> Cohort:
    """The uploaded cohort, refused with one message naming the file when it cannot be trained on."""
    cohort = load_csv(path, form, limits=TRAIN_LIMITS, name=name)
    if cohort.semesters > MAX_SEMESTERS:
        raise DataError(f"{name}: {cohort.semesters} semesters is over the {MAX_SEMESTERS}-semester limit")
    check_trainable(cohort)
    return cohort


def train_own_model(path: str | Path, root: Path, report: Report = lambda share, what: None,
                    form: CohortFormat = CohortFormat()) -> OwnModel:
    """Train, export and verify a model on an uploaded CSV read as `form`, in a fresh directory under `root`."""
    name = Path(path).name
    cohort = read_training_file(path, name, form)
    directory = Path(tempfile.mkdtemp(prefix="own-", dir=root))
    try:
        data = directory / name
        shutil.copyfile(path, data)  # Gradio deletes its upload copies on its own schedule
        run = directory / "model"
        command = " ".join(filter(None, [f"cgpa train --data {name}", form.options(),
                                         f"--out model --max-seconds {TRAIN_SECONDS}"]))
        built = pipeline.build(cohort, run, TrainConfig(max_seconds=TRAIN_SECONDS), OWN_MODEL_STEPS, data,
                               {"train": command}, lambda share, what: report(BUILD_SHARE * share, what))
        RunDir(directory).write_json(RunDir.PARITY, parity_without_records(built.parity))
        report(BUILD_SHARE, "loading both runtimes")
        backends = load_backends(run)
        return OwnModel(directory, backends, name, backends.torch.record, built.parity)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


ERROR_COLUMNS = ["predicting", "held-out examples", "MAE, this model", "MAE, best baseline", "best baseline",
                 "MAE, repeat previous", f"{INTERVAL_LEVEL:.0%} interval coverage"]


def error_table(model: OwnModel) -> list[list]:
    """Held-out error of the model against the baselines, a row per target (ERROR_COLUMNS)."""
    rows = []
    for target, title in (("next", "next semester"), ("last", "final semester")):
        scores = model.record.test.get(target)
        if not scores or not scores.model["n"]:
            continue
        best = scores.best_baseline
        rows.append([title, scores.model["n"], round(scores.mae("model"), 3), round(scores.mae(best), 3), best,
                     round(scores.mae("persistence"), 3), f"{scores.model[COVERAGE_KEY]:.0%}"])
    return rows
