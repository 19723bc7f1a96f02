"""Train, export and verify a model, for `python -m demo --rebuild` and for a visitor's own cohort.

A visitor's model lives in its own directory for its browser session only: it is served
to that session alone, never replaces the shipped model, and is deleted when the session
ends (the page is closed), when it has been idle for an hour, or when a later server finds
it left by one that stopped. No UI here: demo/app.py calls these functions.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from data import Cohort, load_cohort, load_csv
from demo.service import Backends, load_backends
from model.config import COVERAGE_KEY, INTERVAL_LEVEL, TrainConfig
from model.metrics import best_held_out_baseline
from model.train import check_trainable, train_run
from runtime.errors import DataError, UserError
from runtime.rundir import RunDir, process_alive
from runtime.table import Limits

# What a visitor's training file may hold, checked while reading, before any training.
TRAIN_LIMITS = Limits(bytes=1024 * 1024, rows=3000, columns=40, header_chars=4000)
MAX_SEMESTERS = 12
TRAIN_SECONDS = 60  # the training budget; export and verification take a few seconds more
SESSIONS_ROOT = Path(tempfile.gettempdir()) / "cgpa-demo-sessions"  # one folder per server process
IDLE_SECONDS = 3600  # a session that never said goodbye (an API client) loses its model after this
MAX_MODELS = 20  # models kept at once across sessions; the least recently used goes first
TRAINING_SHARE = 0.85  # of a progress display: the rest is export, verification and loading

Report = Callable[[float, str], None]  # (share of the work done, what is happening) for a progress display


def build_model(cohort: Cohort, run: str | Path, config: TrainConfig, command: str, data: str | Path | None = None,
                report: Report | None = None) -> tuple[dict, dict]:
    """Train into `run`, export it, verify the export against torch and write its card; returns
    the held-out metrics and the parity report, refusing an export that does not match. `data` is the training CSV
    when it is not the shipped one, so verification also checks the students' own prefixes.
    Progress goes to `report`, or without it to the console."""
    from export.onnx_export import export_onnx
    from export.verify import verify
    from model.card import write_model_card

    steps = [(0.0, f"training on {cohort.describe_source()}"), (TRAINING_SHARE, "exporting to ONNX"),
             (0.93, "verifying ONNX against torch")]

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
    from export.verify import format_parity

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
        return [self.backends.run / name for name in (RunDir.ONNX, RunDir.PARITY, RunDir.CARD)]


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
        report(0.97, "loading both runtimes")
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


def _delete(models: list[OwnModel | None]) -> None:
    for model in models:
        if model is not None:
            shutil.rmtree(model.directory, ignore_errors=True)


class OwnModels:
    """The visitors' models by session; safe to use from Gradio's worker threads."""

    def __init__(self):
        self._models: dict[str, OwnModel] = {}
        self._lock = threading.Lock()
        SESSIONS_ROOT.mkdir(exist_ok=True)
        for folder in SESSIONS_ROOT.iterdir():  # left by a server that stopped: nobody can reach them now
            if not process_alive(folder.name):
                shutil.rmtree(folder, ignore_errors=True)
        self.root = SESSIONS_ROOT / str(os.getpid())
        self.root.mkdir(exist_ok=True)

    def train(self, session: str, path: str | Path, report: Report = lambda share, what: None) -> OwnModel:
        model = train_own_model(path, self.root, report)
        self.keep(session, model)
        return model

    def keep(self, session: str, model: OwnModel) -> None:
        with self._lock:
            gone = [self._models.pop(session, None)]
            self._models[session] = model
            gone += self._expire(session)
        _delete(gone)

    def get(self, session: str) -> OwnModel:
        with self._lock:
            model = self._models.get(session)
            gone = self._expire(session)
        _delete(gone)
        if model is None:
            raise UserError("no model of yours is loaded: train one on your cohort first (models are removed when "
                            f"the page is closed or after {IDLE_SECONDS // 60} idle minutes)")
        model.used = time.monotonic()
        return model

    def discard(self, session: str) -> None:
        with self._lock:
            gone = [self._models.pop(session, None)]
        _delete(gone)

    def _expire(self, current: str) -> list[OwnModel]:
        """Under the lock: take out the idle models, then the least recently used over the limit."""
        idle = [s for s, m in self._models.items() if time.monotonic() - m.used > IDLE_SECONDS]
        by_use = sorted(self._models, key=lambda s: self._models[s].used)
        over = by_use[:max(0, len(self._models) - MAX_MODELS)]
        return [self._models.pop(s) for s in dict.fromkeys(idle + over) if s != current]

    def __len__(self) -> int:
        return len(self._models)
