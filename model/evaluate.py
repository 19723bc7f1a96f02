"""`cgpa evaluate`: repeated student-level K-fold over every cell type and the baselines.

In each fold the models are trained (early stopping, any weight-decay tuning and the
interval calibration all on validation students inside the training fold) and then
scored on the held-out fold's students, so every number here is out-of-sample. The
default cell is then compared with each baseline on the same predictions: the paired
difference in MAE with a bootstrap over students (model.metrics.paired_bootstrap).
The default cell is also retrained on the same folds with other seeds (its initialisation
and its members' validation students), so the report shows how much of a difference is
the noise of training itself. The rest of the degree (every remaining semester, the final CGPA, the
risk of ending below the at-risk line) is scored on the same held-out students: model/trajectory_evaluation.py.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cgpa_rnn.data.cohort import Cohort, check_trainable
from cgpa_rnn.data.sequences import TARGETS, repeated_kfold
from cgpa_rnn.data.sources import describe_source
from cgpa_rnn.data.synthetic import best_achievable_mae
from cgpa_rnn.errors import UserError
from cgpa_rnn.model.baselines import BASELINES
from cgpa_rnn.model.config import CELLS, COVERAGE_KEY, WIDTH_KEY, TrainConfig
from cgpa_rnn.model.figures import save_figure
from cgpa_rnn.model.metrics import (
    against_best,
    best_baseline,
    by_semester,
    mae_by_group,
    paired_bootstrap,
    regression_metrics,
)
from cgpa_rnn.model.record import DataInfo
from cgpa_rnn.model.trajectory_evaluation import forecast_fold, format_trajectory, summarise_trajectories
from cgpa_rnn.processes import end_with_parent
from cgpa_rnn.rundir import RunDir

FOLDS, REPEATS = 5, 3  # the default cross-validation: 5-fold, repeated with 3 shuffles
SEEDS = 3  # the default cell trained with this many seeds on every fold
TRAJECTORY = ("trajectory", "", "")  # a fold's part holding its rest-of-degree forecasts (FoldForecasts)


@dataclass
class HeldOutPredictions:
    """One model's predictions of one target for the held-out students of one fold."""

    fold: int
    student: np.ndarray  # cohort index
    target: np.ndarray  # semester index predicted
    prediction: np.ndarray
    low: np.ndarray  # the 80% interval
    high: np.ndarray


def concatenate(parts: list[HeldOutPredictions]) -> HeldOutPredictions:
    """All folds' predictions as one record; `fold` is then the fold of each row."""
    folds = np.concatenate([np.full(len(p.student), p.fold) for p in parts])
    return HeldOutPredictions(folds, *(np.concatenate([getattr(p, name) for p in parts])
                                       for name in ("student", "target", "prediction", "low", "high")))


def evaluate(cohort: Cohort, config: TrainConfig, out: str | Path, folds: int = FOLDS, repeats: int = REPEATS,
             cells: tuple[str, ...] = CELLS, progress: bool = True, workers: int | None = None,
             command: str = "", seeds: int = SEEDS) -> dict:
    """Cross-validate and write evaluation.json, evaluation.md and the predicted-vs-actual plot."""
    for name, value in (("repeats", repeats), ("seeds", seeds)):
        if value < 1:
            raise UserError(f"--{name}: {value} is out of range; expected at least 1")
    check_trainable(cohort)
    run = RunDir(out)
    run.check_writable()  # before the folds run, not after
    started = time.perf_counter()
    default = config.model.cell if config.model.cell in cells else cells[0]
    splits = list(enumerate(repeated_kfold(len(cohort), folds, repeats, config.seed)))
    # Seed k of the default cell trains fold f with seed config.seed + k * len(splits) + f: no two runs share one.
    jobs = [(cohort, config, cells, fold_id, fold, 0) for fold_id, fold in splits]
    jobs += [(cohort, replace(config, seed=config.seed + k * len(splits)), (default,), fold_id, fold, k)
             for k in range(1, seeds) for fold_id, fold in splits]
    results = run_folds(jobs, progress, workers)
    collected, chosen_decay = collect(results, cells)
    seed_parts = {key: collected.pop(key) for key in list(collected) if key[0] == "seeds"}
    trajectory_folds = collected.pop(TRAJECTORY)
    report = {"command": command, "data": DataInfo.of(cohort).to_dict(), "synthetic": cohort.is_synthetic,
              "folds": folds, "repeats": repeats, "seed": config.seed, "seeds": seeds, "config": config.to_dict(),
              "models": {}, "baselines": {}, "chosen_weight_decay": chosen_decay}
    for (group, name, target_name), parts in collected.items():
        report[group].setdefault(name, {})[target_name] = summarise(cohort, concatenate(parts))
    report["evidence"] = evidence(cohort, collected, default, config.seed)
    report["seed_spread"] = seed_spread(cohort, collected, seed_parts, default)
    report["trajectory"] = summarise_trajectories(cohort, trajectory_folds, default)
    if cohort.is_synthetic and "cohort" not in cohort.source:  # known only for the calibrated kind
        report["best_achievable"] = {name: best_achievable_mae(cohort, *make(cohort.grades))
                                     for name, make in TARGETS.items()}
    report["seconds"] = round(time.perf_counter() - started, 1)
    run.write_json(RunDir.EVALUATION, report)
    run.write_text(RunDir.EVALUATION_REPORT, format_report(report))
    plot_predictions(collected, default, run, cohort, best_baseline(report, "next")[0])
    return report


def run_folds(jobs: list, progress: bool, workers: int | None) -> list:
    """Every fold's job, in `workers` processes (default: one per core), each single-threaded."""
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    with tqdm(total=len(jobs), desc="cross-validation trainings", disable=not progress) as bar:
        if workers == 1:
            return [_fold_done(_run_fold(job), bar) for job in jobs]
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
            return [_fold_done(result, bar) for result in pool.map(_run_fold, jobs)]


def _fold_done(result, bar):
    bar.update(1)
    return result


def collect(results: list, cells: tuple[str, ...]) -> tuple[dict, dict]:
    """Per (group, model, target): the folds' predictions; per cell: the weight decay each fold chose."""
    collected: dict[tuple[str, str, str], list[HeldOutPredictions]] = {}
    chosen_decay: dict[str, list[float]] = {cell: [] for cell in cells}
    for fold_parts, fold_decay in results:
        for key, part in fold_parts.items():
            collected.setdefault(key, []).append(part)
        for cell, decay in fold_decay.items():
            chosen_decay[cell].append(decay)
    return collected, chosen_decay


def _run_fold(job) -> tuple[dict, dict]:
    """Fit the baselines and every cell on one fold's training students; predict its test students.
    Seed k > 0 is a retraining of the default cell alone, filed under ("seeds", "cell/k", target); seed 0
    also forecasts the rest of the degree with every cell and baseline, filed under TRAJECTORY."""
    import torch

    from cgpa_rnn.model.fitting import fit, predict_all_steps

    cohort, config, cells, fold_id, fold, k = job
    torch.set_num_threads(1)  # one process per core; tiny matrices gain nothing from threads
    grades, college = cohort.grades[fold.test], cohort.college[fold.test]
    examples = {name: make(grades) for name, make in TARGETS.items()}
    parts, decay, fitted_baselines, trained = {}, {}, {}, {}
    for baseline in BASELINES if k == 0 else ():
        fitted = fitted_baselines[baseline.name] = baseline().fit(cohort.grades[fold.train], cohort.college[fold.train])
        for name, (student, target) in examples.items():
            prediction, low, high = fitted.predict_interval(grades, college, student, target)
            parts[("baselines", baseline.name, name)] = HeldOutPredictions(fold_id, fold.test[student], target,
                                                                           prediction, low, high)
    for cell in cells:
        cell_config = replace(config, model=replace(config.model, cell=cell), seed=config.seed + fold_id)
        model, history = fit(cell_config, cohort.grades[fold.train], cohort.college[fold.train], scale=cohort.scale,
                             prior=fitted_baselines.get("damped_deviation"))  # fitted once, the same for every cell
        if k == 0:
            decay[cell], trained[cell] = history.weight_decay, model
        quantiles = predict_all_steps(model, grades, college)
        for name, (student, target) in examples.items():
            picked = quantiles[student, target - 1]
            key = ("models", cell, name) if k == 0 else ("seeds", f"{cell}/{k}", name)
            parts[key] = HeldOutPredictions(fold_id, fold.test[student], target, picked[:, 1], picked[:, 0],
                                            picked[:, 2])
    if k == 0:
        parts[TRAJECTORY] = forecast_fold(cohort, fold, trained, fitted_baselines)
    return parts, decay


def summarise(cohort: Cohort, pooled: HeldOutPredictions) -> dict:
    actual = cohort.grades[pooled.student, pooled.target].astype(np.float64)
    metrics = regression_metrics(pooled.prediction, actual, pooled.low, pooled.high)
    error = np.abs(pooled.prediction - actual)
    fold_mae = [error[pooled.fold == f].mean() for f in np.unique(pooled.fold)]
    metrics["mae_fold_std"] = float(np.std(fold_mae, ddof=1)) if len(fold_mae) > 1 else 0.0
    metrics["by_gender"] = mae_by_group(pooled.prediction, actual, cohort.gender[pooled.student])
    metrics["by_college"] = mae_by_group(pooled.prediction, actual, cohort.college[pooled.student])
    metrics["by_semester"] = by_semester(pooled.prediction, actual, pooled.target, pooled.low, pooled.high)
    return metrics


def evidence(cohort: Cohort, collected: dict, cell: str, seed: int) -> dict:
    """The default cell against every baseline, per target: paired MAE difference, bootstrap over students."""
    result = {"model": cell, "versus": {}}
    for (group, name, target_name), parts in collected.items():
        if group != "baselines" or ("models", cell, target_name) not in collected:
            continue
        ours, theirs = concatenate(collected[("models", cell, target_name)]), concatenate(parts)
        assert np.array_equal(ours.student, theirs.student) and np.array_equal(ours.target, theirs.target)
        actual = cohort.grades[ours.student, ours.target].astype(np.float64)
        result["versus"].setdefault(name, {})[target_name] = paired_bootstrap(
            np.abs(ours.prediction - actual), np.abs(theirs.prediction - actual), ours.student, seed=seed)
    return result


def seed_spread(cohort: Cohort, collected: dict, seed_parts: dict, cell: str) -> dict:
    """Per target: the default cell's MAE with each training seed (the reported one first) on the same
    held-out students, and the range of those MAEs."""
    spread = {}
    for target_name in TARGETS:
        runs = [collected[("models", cell, target_name)]]
        runs += [parts for (_, _, name), parts in seed_parts.items() if name == target_name]  # in seed order
        maes = []
        for parts in runs:
            pooled = concatenate(parts)
            actual = cohort.grades[pooled.student, pooled.target].astype(np.float64)  # as summarise reads it
            maes.append(float(np.abs(pooled.prediction - actual).mean()))
        spread[target_name] = {"mae": maes, "range": max(maes) - min(maes)}
    return {"model": cell, "targets": spread}


def format_report(report: dict) -> str:
    title = describe_source(report["data"]["source"])
    scale = DataInfo.from_dict(report["data"]).scale
    lines = [f"# Cross-validated evaluation: {title}", "",
             f"Grade points on the {scale} scale; MAE / sd is the MAE in standard deviations of the target, "
             "comparable across cohorts graded on different scales.", "",
             f"{report['folds']}-fold x {report['repeats']} repeats, student-level, seed {report['seed']}; "
             f"{report['data']['students']} students; pooled over all held-out predictions; "
             f"± is the standard deviation of MAE across folds. Every interval is an 80% one: models calibrate "
             f"theirs on validation students, baselines take their training residuals' 10% and 90% quantiles.", ""]
    for target, label in (("next", "every next semester"), ("last", "the last semester from all earlier ones")):
        lines += [f"## Target `{target}`: {label}", "",
                  f"| model | MAE | MAE / sd | RMSE | R² | {COVERAGE_KEY} | {WIDTH_KEY} |",
                  "|---|---|---|---|---|---|---|"]
        for group in ("models", "baselines"):
            for name, entry in report[group].items():
                m = entry[target]
                lines.append(f"| {name} | {m['mae']:.4f} ± {m['mae_fold_std']:.4f} | {m['mae_per_sd']:.4f} | "
                             f"{m['rmse']:.4f} | {m['r2']:.3f} | {m[COVERAGE_KEY]:.3f} | {m[WIDTH_KEY]:.3f} |")
        if "best_achievable" in report:
            lines.append(f"| best achievable (known noise) | {report['best_achievable'][target]:.4f} | | | | | |")
        name, mae = best_baseline(report, target)
        lines.append("")
        for cell, entry in report["models"].items():
            lines.append(f"- {cell}: {against_best(entry[target]['mae'], mae)} the best baseline "
                         f"({name}, MAE {mae:.4f})")
        lines.append("")
    lines += format_evidence(report) + format_seed_spread(report) + format_semesters(report)
    lines += format_trajectory(report.get("trajectory"))
    lines += ["## MAE by gender (target `next`)", "", "| model | " + " | ".join(
        f"{k}" for k in next(iter(report["models"].values()))["next"]["by_gender"]) + " |"]
    lines.append("|---" * (1 + len(next(iter(report["models"].values()))["next"]["by_gender"])) + "|")
    for group in ("models", "baselines"):
        for name, entry in report[group].items():
            by = entry["next"]["by_gender"]
            lines.append(f"| {name} | " + " | ".join(f"{v['mae']:.3f} (n={v['n']})" for v in by.values()) + " |")
    lines += ["", f"Evaluation took {report['seconds']} s."]
    return "\n".join(lines) + "\n"


def format_evidence(report: dict) -> list[str]:
    evidence = report.get("evidence")
    if not evidence or not evidence["versus"]:
        return []
    first = next(iter(next(iter(evidence["versus"].values())).values()))
    lines = [f"## `{evidence['model']}` against each baseline (paired, bootstrap over students)", "",
             f"MAE of `{evidence['model']}` minus the baseline's on the same held-out predictions; 95% interval "
             f"and share of {first['draws']} bootstrap draws of the {first['students']} students in which "
             f"`{evidence['model']}` has the lower MAE.", "",
             "| baseline | next: difference [95% interval] | next: model wins | last: difference [95% interval] "
             "| last: model wins |", "|---|---|---|---|---|"]
    for name, targets in evidence["versus"].items():
        cells = []
        for target in ("next", "last"):
            b = targets[target]
            cells += [f"{b['mae_difference']:+.4f} [{b['ci95'][0]:+.4f}, {b['ci95'][1]:+.4f}]",
                      f"{b['model_wins']:.1%}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def format_seed_spread(report: dict) -> list[str]:
    spread = report.get("seed_spread")
    if not spread or len(next(iter(spread["targets"].values()))["mae"]) < 2:
        return []
    cell, targets = spread["model"], spread["targets"]
    seeds = len(next(iter(targets.values()))["mae"])
    lines = [f"## `{cell}` retrained with {seeds} seeds (the noise of training)", "",
             f"The same folds and held-out students; only the seed of `{cell}` differs (its initialisation and its "
             "members' validation students). The first seed's predictions are the ones reported above. A "
             "difference between models no larger than this range is training noise, not evidence (a few seeds "
             "show the least of that noise, not all of it).", "",
             "| target | " + " | ".join(f"seed {k + 1}" for k in range(seeds)) + " | range | best baseline |",
             "|---" * (seeds + 3) + "|"]
    for target, entry in targets.items():
        name, mae = best_baseline(report, target)
        lines.append(f"| {target} | " + " | ".join(f"{m:.4f}" for m in entry["mae"])
                     + f" | {entry['range']:.4f} | {name} {mae:.4f} |")
    return lines + [""]


def format_semesters(report: dict) -> list[str]:
    """Coverage and width of the 80% interval per predicted semester (target `next`)."""
    semesters = list(next(iter(report["models"].values()))["next"]["by_semester"])
    lines = [f"## The interval per predicted semester (target `next`): {COVERAGE_KEY} / {WIDTH_KEY}", "",
             "| model | " + " | ".join(f"semester {s}" for s in semesters) + " |", "|---" * (1 + len(semesters)) + "|"]
    for group in ("models", "baselines"):
        for name, entry in report[group].items():
            by = entry["next"]["by_semester"]
            lines.append(f"| {name} | " + " | ".join(f"{by[s][COVERAGE_KEY]:.3f} / {by[s][WIDTH_KEY]:.2f}"
                                                     if s in by else "" for s in semesters) + " |")
    return lines + [""]


def plot_predictions(collected: dict, cell: str, run: RunDir, cohort: Cohort, baseline: str) -> None:
    from matplotlib.figure import Figure  # the object API: no global pyplot state, safe across threads

    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    for (group, name), color in ((("models", cell), "tab:blue"), (("baselines", baseline), "tab:orange")):
        parts = collected.get((group, name, "next"), [])
        if not parts:
            continue
        pooled = concatenate(parts)
        axis.scatter(cohort.grades[pooled.student, pooled.target], pooled.prediction, s=6, alpha=0.4, color=color,
                     label=name)
    axis.plot([cohort.scale.low, cohort.scale.high], [cohort.scale.low, cohort.scale.high], color="grey", linewidth=1)
    low, high = np.nanmin(cohort.grades) - 0.5, np.nanmax(cohort.grades) + 0.5
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    axis.set_xlabel("actual grade")
    axis.set_ylabel("predicted grade (held-out folds)")
    axis.set_title(("SYNTHETIC cohort: " if cohort.is_synthetic else "") + "predicted vs actual")
    axis.legend()
    save_figure(figure, run, RunDir.PREDICTED_VS_ACTUAL)
