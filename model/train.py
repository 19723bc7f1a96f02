"""`cgpa train`: one seeded training from a cohort to a run directory.

The run directory (cgpa_rnn.rundir.RunDir) gets the checkpoint, the config, the metrics and
the training curve; the model card is rendered by the pipeline (export/pipeline.py). Metrics
are measured on a held-out share of the
students that neither training nor early stopping saw.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cgpa_rnn.data.cohort import Cohort, check_trainable
from cgpa_rnn.data.sequences import TARGETS, split_students
from cgpa_rnn.model.baselines import BASELINES, DampedDeviation
from cgpa_rnn.model.config import TrainConfig
from cgpa_rnn.model.figures import save_figure
from cgpa_rnn.model.metrics import by_semester, regression_metrics
from cgpa_rnn.model.record import DataInfo
from cgpa_rnn.rundir import RunDir

TEST_SHARE = 0.15


def held_out_split(cohort: Cohort, seed: int) -> tuple[np.ndarray, np.ndarray]:
    train, _, test = split_students(len(cohort), seed, validation=0.0, test=TEST_SHARE)
    return train, test


def fit_baselines(cohort: Cohort, train: np.ndarray) -> list:
    return [baseline().fit(cohort.grades[train], cohort.college[train]) for baseline in BASELINES]


def held_out_metrics(model, cohort: Cohort, train: np.ndarray, test: np.ndarray, fitted: list | None = None) -> dict:
    """Metrics of the model and of every baseline (`fitted` on `train`, or fitted here) on the `test` students."""
    from cgpa_rnn.model.fitting import predict_all_steps

    grades, college = cohort.grades[test], cohort.college[test]
    quantiles = predict_all_steps(model, grades, college)
    fitted = fitted or fit_baselines(cohort, train)
    result = {}
    for target_name, examples in TARGETS.items():
        student, target = examples(grades)
        actual = grades[student, target]
        picked = quantiles[student, target - 1]
        entry = {"model": regression_metrics(picked[:, 1], actual, picked[:, 0], picked[:, 2])}
        entry["model"]["by_semester"] = by_semester(picked[:, 1], actual, target, picked[:, 0], picked[:, 2])
        for baseline in fitted:
            prediction, low, high = baseline.predict_interval(grades, college, student, target)
            entry[baseline.name] = regression_metrics(prediction, actual, low, high)
        result[target_name] = entry
    return result


def plot_history(history, run: RunDir, synthetic: bool) -> None:
    from matplotlib.figure import Figure  # the object API: no global pyplot state, safe across threads

    figure = Figure(figsize=(6, 3.5))
    axis = figure.subplots()
    for k, (train, validation) in enumerate(zip(history.train, history.validation)):
        axis.plot(train, color="tab:blue", alpha=0.7, label="train" if k == 0 else None)
        axis.plot(validation, color="tab:orange", alpha=0.7, label="validation" if k == 0 else None)
        axis.axvline(history.best_epoch[k], color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("epoch")
    axis.set_ylabel("pinball loss (normalised)")
    axis.set_title(("SYNTHETIC cohort: " if synthetic else "") + "training curve (dotted: epoch kept)")
    axis.legend()
    save_figure(figure, run, RunDir.TRAINING_CURVE)


def train_run(cohort: Cohort, config: TrainConfig, out: str | Path, progress: bool = True, command: str = "",
              callbacks: tuple = (), finish: Callable[[RunDir], object] | None = None) -> dict:
    """Train, measure on held-out students, and write the run directory. Returns the metrics.

    `progress`: a console bar; `callbacks` (model.trainer's, e.g. ShareDone for a UI) run after
    every epoch; `finish` adds files to the staged directory (the pipeline's model card).

    Everything is written into a staging directory that then replaces `out` as a whole, so
    a crash at any moment leaves the previous model's files, all of them, or the new ones."""
    check_trainable(cohort)
    target = RunDir(out)
    run = target.staging()  # checks the location before any training
    try:
        metrics = _train_into(run, cohort, config, progress, command, callbacks)
        if finish:
            finish(run)
    except BaseException:
        shutil.rmtree(run.path, ignore_errors=True)  # the previous model stays as it was
        raise
    target.replace_with(run)
    return metrics


def _train_into(run: RunDir, cohort: Cohort, config: TrainConfig, progress: bool, command: str,
                callbacks: tuple) -> dict:
    import torch

    from cgpa_rnn.model.checkpoint import save_checkpoint
    from cgpa_rnn.model.fitting import fit
    from cgpa_rnn.model.trainer import ConsoleBar

    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and keeps runs reproducible
    train, test = held_out_split(cohort, config.seed)
    baselines = fit_baselines(cohort, train)
    prior = next(b for b in baselines if isinstance(b, DampedDeviation))  # the network's prior, fitted once
    bar = ConsoleBar(f"train {config.model.cell}") if progress else None
    started = time.perf_counter()
    try:
        model, history = fit(config, cohort.grades[train], cohort.college[train], callbacks=(
            *callbacks, *([bar] if bar else [])), scale=cohort.scale, prior=prior)
    finally:
        if bar:
            bar.close()
    seconds = time.perf_counter() - started
    config.weight_decay = history.weight_decay
    metrics = {
        "command": command,
        "synthetic": cohort.is_synthetic,
        "data": DataInfo.of(cohort).to_dict(),
        "split": {"seed": config.seed, "test_share": TEST_SHARE, "train_students": len(train),
                  "test_students": len(test)},
        "test": held_out_metrics(model, cohort, train, test, baselines),
        "tuning": {"weight_decay_validation_loss": history.tuning, "chosen_weight_decay": history.weight_decay},
        "best_epochs": history.best_epoch,
        "epochs": len(history.train[0]),
        "steps": history.steps,
        "time_limited_networks": history.time_limited,
        "prior": {"persistence": history.prior_only,
                  "evidence_against_persistence": round(history.persistence_evidence, 2)},
        "train_seconds": round(seconds, 2),
        "colleges": model.college_codes.tolist(),
    }
    run.write_json(RunDir.CONFIG, config.to_dict())
    plot_history(history, run, cohort.is_synthetic)
    run.write_json(RunDir.METRICS, metrics)
    save_checkpoint(run, model, config, {"data": metrics["data"], "metrics": metrics})
    return metrics
