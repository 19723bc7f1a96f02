"""`cgpa evaluate`: repeated student-level K-fold over every cell type and the baselines.

In each fold the models are trained (weight decay tuned, early stopping and interval
calibration all on validation students inside the training fold) and then scored on
the held-out fold's students, so every number here is out-of-sample.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure  # the object API: no global pyplot state, safe across threads
from tqdm import tqdm

from data.artifacts import atomic_path, write_json, write_text
from data.cohort import Cohort
from data.sources import describe_source
from data.sequences import TARGETS, repeated_kfold
from data.synthetic import best_achievable_mae
from model.baselines import BASELINES
from model.metrics import best_baseline, mae_by_group, regression_metrics
from model.network import CELLS
from model.run import data_info
from model.train import TrainConfig, fit, predict_all_steps


def evaluate(cohort: Cohort, config: TrainConfig, out: str | Path, folds: int = 5, repeats: int = 3,
             cells: tuple[str, ...] = CELLS, progress: bool = True, workers: int | None = None,
             command: str = "") -> dict:
    """Cross-validate; folds run in `workers` processes (default: one per core), each single-threaded."""
    started = time.perf_counter()
    splits = list(enumerate(repeated_kfold(len(cohort), folds, repeats, config.seed)))
    jobs = [(cohort, config, cells, fold_id, fold) for fold_id, fold in splits]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="cross-validation folds", disable=not progress)
    results = []
    if workers == 1:
        for job in jobs:
            results.append(_run_fold(job))
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for result in pool.map(_run_fold, jobs):
                results.append(result)
                bar.update(1)
    bar.close()
    # Per model and target: lists of (fold id, student index, target, prediction, low, high).
    collected: dict[tuple[str, str, str], list] = {}
    chosen_decay: dict[str, list[float]] = {cell: [] for cell in cells}
    for fold_parts, fold_decay in results:
        for key, part in fold_parts.items():
            collected.setdefault(key, []).append(part)
        for cell, decay in fold_decay.items():
            chosen_decay[cell].append(decay)

    report = {"command": command, "data": data_info(cohort), "synthetic": cohort.is_synthetic, "folds": folds, "repeats": repeats,
              "seed": config.seed, "config": config.to_dict(), "models": {}, "baselines": {},
              "chosen_weight_decay": chosen_decay}
    for (group, name, target_name), parts in collected.items():
        report[group].setdefault(name, {})[target_name] = _summarise(cohort, parts)
    if cohort.is_synthetic:
        report["best_achievable"] = {name: best_achievable_mae(cohort, *make(cohort.grades))
                                     for name, make in TARGETS.items()}
    report["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(out)
    write_json(out / "evaluation.json", report)
    write_text(out / "evaluation.md", format_report(report))
    plot_predictions(collected, config.model.cell, out / "predicted_vs_actual.png", cohort)
    return report


def _run_fold(job) -> tuple[dict, dict]:
    """Fit the baselines and every cell on one fold's training students; predict its test students."""
    cohort, config, cells, fold_id, fold = job
    torch.set_num_threads(1)  # one process per core; tiny matrices gain nothing from threads
    grades, college = cohort.grades[fold.test], cohort.college[fold.test]
    examples = {name: make(grades) for name, make in TARGETS.items()}
    parts, decay = {}, {}
    for baseline in BASELINES:
        fitted = baseline().fit(cohort.grades[fold.train], cohort.college[fold.train])
        for name, (student, target) in examples.items():
            prediction = fitted.predict(grades, college, student, target)
            parts[("baselines", baseline.name, name)] = (fold_id, fold.test[student], target, prediction, None, None)
    for cell in cells:
        cell_config = replace(config, model=replace(config.model, cell=cell), seed=config.seed + fold_id)
        model, history = fit(cell_config, cohort.grades[fold.train], cohort.college[fold.train], progress=False)
        decay[cell] = history.weight_decay
        quantiles = predict_all_steps(model, grades, college)
        for name, (student, target) in examples.items():
            picked = quantiles[student, target - 1]
            parts[("models", cell, name)] = (fold_id, fold.test[student], target, picked[:, 1], picked[:, 0],
                                             picked[:, 2])
    return parts, decay


def _summarise(cohort: Cohort, parts: list) -> dict:
    fold_ids = np.concatenate([np.full(len(p[1]), p[0]) for p in parts])
    student = np.concatenate([p[1] for p in parts])
    target = np.concatenate([p[2] for p in parts])
    prediction = np.concatenate([p[3] for p in parts])
    actual = cohort.grades[student, target].astype(np.float64)
    has_interval = parts[0][4] is not None
    low = np.concatenate([p[4] for p in parts]) if has_interval else None
    high = np.concatenate([p[5] for p in parts]) if has_interval else None
    metrics = regression_metrics(prediction, actual, low, high)
    fold_mae = [np.abs(prediction - actual)[fold_ids == f].mean() for f in np.unique(fold_ids)]
    metrics["mae_fold_std"] = float(np.std(fold_mae, ddof=1)) if len(fold_mae) > 1 else 0.0
    metrics["by_gender"] = mae_by_group(prediction, actual, cohort.gender[student])
    metrics["by_college"] = mae_by_group(prediction, actual, cohort.college[student])
    return metrics


def format_report(report: dict) -> str:
    title = describe_source(report["data"]["source"])
    lines = [f"# Cross-validated evaluation: {title}", "",
             f"{report['folds']}-fold x {report['repeats']} repeats, student-level, seed {report['seed']}; "
             f"{report['data']['students']} students; pooled over all held-out predictions; "
             f"± is the standard deviation of MAE across folds.", ""]
    for target, label in (("next", "every next semester"), ("last", "the last semester from all earlier ones")):
        lines += [f"## Target `{target}`: {label}", "",
                  "| model | MAE | RMSE | R² | 80% coverage | 80% width |", "|---|---|---|---|---|---|"]
        for group in ("models", "baselines"):
            for name, entry in report[group].items():
                m = entry[target]
                coverage = f"{m['coverage80']:.3f}" if "coverage80" in m else ""
                width = f"{m['width80']:.3f}" if "width80" in m else ""
                lines.append(f"| {name} | {m['mae']:.4f} ± {m['mae_fold_std']:.4f} | {m['rmse']:.4f} | "
                             f"{m['r2']:.3f} | {coverage} | {width} |")
        if "best_achievable" in report:
            lines.append(f"| best achievable (known noise) | {report['best_achievable'][target]:.4f} | | | | |")
        name, mae = best_baseline(report, target)
        lines.append("")
        for cell, entry in report["models"].items():
            change = (entry[target]["mae"] - mae) / mae
            lines.append(f"- {cell}: {abs(change):.1%} {'below' if change <= 0 else 'above'} the best baseline "
                         f"({name}, MAE {mae:.4f})")
        lines.append("")
    lines += ["## MAE by group (target `next`)", "", "| model | " + " | ".join(
        f"{k}" for k in next(iter(report["models"].values()))["next"]["by_gender"]) + " |"]
    lines.append("|---" * (1 + len(next(iter(report["models"].values()))["next"]["by_gender"])) + "|")
    for group in ("models", "baselines"):
        for name, entry in report[group].items():
            by = entry["next"]["by_gender"]
            lines.append(f"| {name} | " + " | ".join(f"{v['mae']:.3f} (n={v['n']})" for v in by.values()) + " |")
    lines += ["", f"Evaluation took {report['seconds']} s."]
    return "\n".join(lines) + "\n"


def plot_predictions(collected: dict, cell: str, path: Path, cohort: Cohort) -> None:
    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    for (group, name), color in ((("models", cell), "tab:blue"), (("baselines", "ridge"), "tab:orange")):
        parts = collected.get((group, name, "next"), [])
        if not parts:
            continue
        student = np.concatenate([p[1] for p in parts])
        target = np.concatenate([p[2] for p in parts])
        prediction = np.concatenate([p[3] for p in parts])
        axis.scatter(cohort.grades[student, target], prediction, s=6, alpha=0.4, color=color, label=name)
    axis.plot([0, 10], [0, 10], color="grey", linewidth=1)
    low, high = np.nanmin(cohort.grades) - 0.5, np.nanmax(cohort.grades) + 0.5
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    axis.set_xlabel("actual grade")
    axis.set_ylabel("predicted grade (held-out folds)")
    axis.set_title(("SYNTHETIC cohort: " if cohort.is_synthetic else "") + "predicted vs actual")
    axis.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
