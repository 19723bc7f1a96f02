"""The pipeline: train -> evaluate (optional) -> export -> verify -> bench, then the card.

Each step is one function of a run directory and ends by rendering the model card from the
files now in it, so the card is always the run's latest state. The `cgpa` subcommands call one
step each; `build` runs a chosen sequence of them with one progress display, for
`python -m demo --rebuild` (every step whose files the run holds) and for a visitor's own model
(train, export, verify). Training replaces the run directory as a whole (model/train.py), so the
other steps always run after it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cgpa_rnn.data.cohort import Cohort
from cgpa_rnn.model.config import CELLS, TrainConfig
from cgpa_rnn.model.evaluate import FOLDS, REPEATS, SEEDS
from cgpa_rnn.rundir import RunDir

Progress = Callable[[float, str], None]  # (share of the whole build done, what is happening)

STEPS = ("train", "evaluate", "export", "verify", "bench")
# The files of the optional steps: a run that holds one had the step run (what a rebuild repeats);
# train, export and verify every run has.
STEP_FILES = {"evaluate": RunDir.EVALUATION, "bench": RunDir.BENCH}
# How long each step takes relative to the others (seconds on a 2-core machine: training within a
# visitor's 60 s budget, evaluate on the shipped data), only to divide a progress display.
STEP_WEIGHTS = {"train": 60.0, "evaluate": 45.0, "export": 5.5, "verify": 3.0, "bench": 12.0}
STEP_TITLES = {"train": "training", "evaluate": "cross-validating every cell and baseline",
               "export": "exporting to ONNX", "verify": "verifying ONNX against torch",
               "bench": "benchmarking torch and onnxruntime"}


def card(run: str | Path | RunDir) -> Path:
    """Render MODEL_CARD.md from the run's files as they are now."""
    from cgpa_rnn.model.card import write_model_card

    write_model_card(run)
    return RunDir.of(run) / RunDir.CARD


def train(cohort: Cohort, config: TrainConfig, run: str | Path, command: str = "", console: bool = True,
          callbacks: tuple = ()) -> dict:
    """Train into `run` (replacing it whole) and return the held-out metrics. `console`: a progress
    bar; `callbacks` (model.trainer's) run after every epoch."""
    from cgpa_rnn.model.train import train_run

    # The card is written before the new directory replaces the old one: no moment without it.
    return train_run(cohort, config, run, progress=console, command=command, callbacks=callbacks, finish=card)


def evaluate(cohort: Cohort, config: TrainConfig, run: str | Path, folds: int = FOLDS, repeats: int = REPEATS,
             cells: tuple[str, ...] = CELLS, command: str = "", console: bool = True, seeds: int = SEEDS) -> dict:
    """Repeated student-level cross-validation of every cell and baseline, written beside the model."""
    from cgpa_rnn.model.evaluate import evaluate as cross_validate

    report = cross_validate(cohort, config, run, folds, repeats, cells=cells, progress=console, command=command,
                            seeds=seeds)
    card(run)
    return report


@dataclass
class Exported:
    onnx: Path
    quantization: dict | None  # export.onnx_export.quantize's report, when asked for


def export(run: str | Path, quantize: bool = False) -> Exported:
    """model.onnx (and its conformance vectors) from model.pt; with `quantize`, an int8 file where it helps."""
    from cgpa_rnn.export.onnx_export import export_onnx

    path = export_onnx(run)
    report = _quantize(run) if quantize else None
    card(run)
    return Exported(path, report)


def _quantize(run: str | Path) -> dict:
    from cgpa_rnn.data import recorded_cohort
    from cgpa_rnn.export.inputs import parity_inputs
    from cgpa_rnn.export.onnx_export import quantize
    from cgpa_rnn.model.torch_predictor import TorchPredictor

    reference = TorchPredictor(run)
    cohort = recorded_cohort(reference.record.data.source)
    return quantize(run, parity_inputs(cohort, reference.semesters, reference.colleges, scale=reference.scale))


def verify(run: str | Path, samples: int | None = None, data: str | Path | None = None) -> dict:
    """Check model.onnx against model.pt; raises ParityError (carrying the report) on a mismatch.
    The card shows the verdict either way."""
    from cgpa_rnn.export.verify import verify as check_parity

    try:
        return check_parity(run, samples=samples, data=data)
    finally:
        card(run)


def bench(run: str | Path, **options) -> dict:
    """Latency, throughput and size of torch and onnxruntime (export.bench.bench's options and defaults)."""
    from cgpa_rnn.export.bench import bench as measure

    report = measure(run, **options)
    card(run)
    return report


@dataclass
class Built:
    """What a build measured; None for a step it did not run."""

    metrics: dict | None = None
    evaluation: dict | None = None
    parity: dict | None = None
    bench: dict | None = None


def steps_held(run: str | Path) -> tuple[str, ...]:
    """The steps whose files the run directory holds (train, export and verify at least)."""
    run = RunDir.of(run)
    return tuple(step for step in STEPS if step not in STEP_FILES or run.exists(STEP_FILES[step]))


def build(cohort: Cohort, run: str | Path, config: TrainConfig, steps: Sequence[str] = STEPS,
          data: str | Path | None = None, commands: dict[str, str] | None = None,
          report: Progress | None = None) -> Built:
    """Run `steps` (in pipeline order) into `run`. `data`: the training CSV when it is not the shipped
    one (verification then also checks the students' own prefixes). `commands`: the command line
    each step records as the way to reproduce it. Progress goes to `report`, or to the console.
    A failed verification raises ParityError after the card shows it."""
    steps = [step for step in STEPS if step in steps]
    commands = commands or {}
    # Read before training replaces the directory: a rebuild measures as the run was measured.
    evaluated = RunDir.of(run).read_json(RunDir.EVALUATION) or {}
    benched = RunDir.of(run).read_json(RunDir.BENCH) or {}
    total = sum(STEP_WEIGHTS[step] for step in steps)
    built = Built()
    done = 0.0
    for number, step in enumerate(steps, 1):
        share, weight = done / total, STEP_WEIGHTS[step] / total
        title = STEP_TITLES[step] + (f" on {cohort.describe_source()}" if step == "train" else "")
        if report:
            report(share, title)
        else:
            print(f"[{number}/{len(steps)}] {title}", flush=True)
        if step == "train":
            built.metrics = train(cohort, config, run, commands.get("train", ""), console=report is None,
                                  callbacks=_epoch_progress(report, share, weight, title))
        elif step == "evaluate":
            built.evaluation = evaluate(cohort, config, run, evaluated.get("folds", FOLDS),
                                        evaluated.get("repeats", REPEATS), tuple(evaluated.get("models", CELLS)),
                                        commands.get("evaluate", ""), console=report is None,
                                        seeds=evaluated.get("seeds", SEEDS))
        elif step == "export":
            export(run)
        elif step == "verify":
            built.parity = verify(run, data=data)
        elif step == "bench":
            built.bench = bench(run, **{k: benched[k] for k in ("calls", "batch") if k in benched})
        done += STEP_WEIGHTS[step]
    return built


def _epoch_progress(report: Progress | None, start: float, weight: float, title: str) -> tuple:
    """Training's share of the display, advanced after every epoch."""
    if report is None:
        return ()
    from cgpa_rnn.model.trainer import ShareDone

    return (ShareDone(lambda share: report(start + weight * share, f"{title}: {share:.0%} of the epochs at most")),)
