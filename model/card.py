"""The model card: rendered from a run directory's JSON files, never typed by hand.

Each step of the pipeline (export/pipeline.py: train, evaluate, export, verify, bench)
re-renders MODEL_CARD.md when it is done, and the demo's About tab shows the same text. The card opens
with the Hugging Face model-card metadata block, so the run directory can be pushed
to the Hub as it is. Each section is one function of the run's files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cgpa_rnn.data.sources import describe_source
from cgpa_rnn.model.config import COVERAGE_KEY, INTERVAL_LEVEL, WIDTH_KEY
from cgpa_rnn.model.metrics import against_best, best_baseline
from cgpa_rnn.model.record import RunRecord
from cgpa_rnn.model.trajectory_evaluation import RISK_BASELINE
from cgpa_rnn.rundir import RunDir

SHIPPED_DATASET = "Semester Result of Technical Students (Kaggle)"
TARGET_LABELS = {"next": "every next semester from the earlier ones",
                 "last": "the final semester from all earlier ones"}


@dataclass
class RunFiles:
    """What a card is rendered from: the run's record, and each later step's report (None where
    that step has not run yet)."""

    record: RunRecord
    evaluation: dict | None
    parity: dict | None
    bench: dict | None

    @classmethod
    def read(cls, run: RunDir) -> RunFiles | None:
        record = RunRecord.read(run)
        if record is None:
            return None
        return cls(record, *(run.read_json(name) for name in (RunDir.EVALUATION, RunDir.PARITY, RunDir.BENCH)))

    @property
    def source(self) -> dict:
        return self.record.data.source


def _yaml(value) -> str:
    return json.dumps(value)  # a JSON scalar is a valid YAML scalar, quoted where it must be


def _dataset_name(source: dict) -> str:
    return SHIPPED_DATASET if source.get("shipped") else describe_source(source)


def front_matter(files: RunFiles) -> list[str]:
    cell = files.record.cell
    results = []
    if files.evaluation is not None and cell in files.evaluation["models"]:
        scope = f"{files.evaluation['folds']}-fold x {files.evaluation['repeats']} student-level cross-validation"
        for target, label in TARGET_LABELS.items():
            results.append((files.evaluation["models"][cell][target]["mae"], f"MAE, {label} ({scope})"))
    else:
        for target, label in TARGET_LABELS.items():
            results.append((files.record.test[target].mae("model"), f"MAE, {label} (held-out students)"))
    lines = ["---", "license: mit", "library_name: pytorch", "tags:"]
    lines += [f"- {tag}" for tag in ("pytorch", "onnx", "rnn", cell, "tabular-regression", "education")]
    lines += ["pipeline_tag: tabular-regression", "metrics:", "- mae", "model-index:",
              f"- name: {_yaml(f'cgpa-rnn-{cell}')}", "  results:", "  - task:", "      type: tabular-regression",
              "      name: Next-semester grade point average", "    dataset:",
              f"      name: {_yaml(_dataset_name(files.source))}",
              f"      type: {_yaml('synthetic' if files.record.synthetic else files.source['name'])}",
              "    metrics:"]
    for value, name in results:
        lines += ["    - type: mae", f"      value: {value:.4f}", f"      name: {_yaml(name)}"]
    return lines + ["---", ""]


def what_it_does(files: RunFiles) -> list[str]:
    config = files.record.config
    model = config.model
    return ["## What it does",
            f"Predicts a student's next-semester grade point average ({files.record.data.scale} scale) from the "
            f"earlier semesters and the {files.record.data.groups.column or 'group'}, with an {INTERVAL_LEVEL:.0%} "
            "prediction interval. "
            f"Cell: `{model.cell}`, hidden size "
            f"{model.hidden} per member, {model.layers} layer(s), ensemble of {model.ensemble}. Each member "
            "adds a recurrent correction to a damped-deviation prior (the group's semester mean plus a damped, "
            "exponentially smoothed deviation of the student from it), whose few parameters it learns too; "
            f"weight decay {config.weight_decay}"
            + (" chosen on validation students." if config.tune_weight_decay else " (fixed).")
            + " The interval is calibrated per predicted semester on validation students. "
            + files.record.prior_sentence(), ""]


def how_it_was_made(files: RunFiles) -> list[str]:
    data, split = files.record.data, files.record.split
    commands = [files.record.command or "cgpa train --out DIR"]
    if files.evaluation is not None and files.evaluation.get("command"):
        commands.append(files.evaluation["command"])
    out = commands[0].split("--out", 1)[1].split()[0] if "--out" in commands[0] else "DIR"
    commands += [f"cgpa export {out}", f"cgpa verify {out}", f"cgpa bench {out}"]
    return ["## How it was made", "From a fresh clone, after `pip install -e \".[train]\"`:", "", "```",
            *commands, "```", "",
            f"- data: {describe_source(data.source)}, {data.students} students, "
            f"fingerprint `{data.fingerprint}`",
            f"- held-out test split: {split.test_students} students (seed {split.seed}), "
            f"trained on {split.train_students}; training took {files.record.train_seconds} s", ""]


def cross_validation(files: RunFiles) -> list[str]:
    evaluation = files.evaluation
    if evaluation is None:
        return []
    lines = [f"## Cross-validated accuracy ({evaluation['folds']}-fold x {evaluation['repeats']}, student-level)",
             "", f"| model | next: MAE ± fold sd | next: {COVERAGE_KEY} | last: MAE ± fold sd "
                 f"| last: {COVERAGE_KEY} |",
             "|---|---|---|---|---|"]
    for group in ("models", "baselines"):
        for name, entry in evaluation[group].items():
            cells = []
            for target in TARGET_LABELS:
                m = entry[target]
                cells += [f"{m['mae']:.4f} ± {m['mae_fold_std']:.4f}",
                          f"{m[COVERAGE_KEY]:.3f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "best_achievable" in evaluation:
        best = evaluation["best_achievable"]
        lines.append(f"| best achievable (known noise) | {best['next']:.4f} | | {best['last']:.4f} | |")
    cell = files.record.cell
    lines.append("")
    if cell in evaluation["models"]:
        semesters = evaluation["models"][cell]["next"].get("by_semester", {})
        if semesters:
            lines.append(f"- the {INTERVAL_LEVEL:.0%} interval of `{cell}` per predicted semester, "
                         "coverage / mean width: "
                         + ", ".join(f"semester {s}: {m[COVERAGE_KEY]:.3f} / {m[WIDTH_KEY]:.2f}"
                                     for s, m in semesters.items()) + ".")
        versus = evaluation.get("evidence", {}).get("versus", {}) if evaluation.get("evidence", {}).get(
            "model") == cell else {}
        for target in TARGET_LABELS:
            best, best_mae = best_baseline(evaluation, target)
            ours = evaluation["models"][cell][target]
            line = (f"- `{target}`: the default `{cell}` is {against_best(ours['mae'], best_mae)} "
                    f"the best baseline ({best}): MAE "
                    f"{ours['mae']:.4f} vs {best_mae:.4f}, fold spread ± {ours['mae_fold_std']:.4f}.")
            if best in versus:
                b = versus[best][target]
                line += (f" Paired over the same predictions, the difference is {b['mae_difference']:+.4f} "
                         f"(95% bootstrap interval {b['ci95'][0]:+.4f} to {b['ci95'][1]:+.4f} over the "
                         f"{b['students']} students); the model has the lower MAE in {b['model_wins']:.0%} of "
                         f"{b['draws']} draws.")
            lines.append(line)
        lines += seed_spread(evaluation, cell)
    return lines + ["", "; ".join(f"`{t}`: {label}" for t, label in TARGET_LABELS.items())
                    + ". Full tables: evaluation.md.", ""]


def seed_spread(evaluation: dict, cell: str) -> list[str]:
    spread = evaluation.get("seed_spread")
    if not spread or spread["model"] != cell or len(spread["targets"]["next"]["mae"]) < 2:
        return []
    ranges = ", ".join(f"`{target}` {min(entry['mae']):.4f} to {max(entry['mae']):.4f}"
                       for target, entry in spread["targets"].items())
    return [f"- retrained with {len(spread['targets']['next']['mae'])} seeds on the same folds, `{cell}`'s MAE "
            f"ranges over {ranges}: a difference no larger than that is the noise of training, not evidence."]


def rest_of_degree(files: RunFiles) -> list[str]:
    """The trajectory's cross-validated scores (evaluation.json's "trajectory"; an older run has none)."""
    section = (files.evaluation or {}).get("trajectory")
    if not section or not section["models"]:
        return []
    cell = files.record.cell if files.record.cell in section["models"] else section["model"]
    ours, risk = section["models"][cell], section["risk"]
    lines = ["## The rest of the degree",
             "Every remaining semester is forecast by feeding each median back as the next semester's grade; "
             "the final CGPA is the mean of the known grades and those forecasts. Cross-validated like the "
             f"above, from every cut of the held-out students (their grades up to a semester, the later ones "
             f"hidden; {section['cuts']} cuts):", "",
             f"- the {INTERVAL_LEVEL:.0%} interval of `{cell}` per horizon (semesters after the last known one), "
             "coverage / mean width: " + ", ".join(f"{h} ahead: {m[COVERAGE_KEY]:.3f} / {m[WIDTH_KEY]:.2f}"
                                                   for h, m in ours["horizons"].items()) + "."]
    final = ours["final"]
    if final["n"]:
        lines.append(f"- the final CGPA, on the {final['n']} cuts of students with every semester known: MAE "
                     f"{final['mae']:.3f}, its {INTERVAL_LEVEL:.0%} interval covers {final[COVERAGE_KEY]:.3f} "
                     f"(mean width {final[WIDTH_KEY]:.2f}).")
    if risk["n"]:
        baseline = section["baselines"].get(RISK_BASELINE)
        versus = [f"{ours['brier']:.4f} for `{cell}`"]
        if baseline is not None:
            versus.append(f"{baseline['brier']:.4f} for the {RISK_BASELINE} baseline rolled forward")
        if risk["base_rate_brier"] is not None:
            versus.append(f"{risk['base_rate_brier']:.4f} for always the training base rate")
        lines.append(f"- the probability of a final CGPA below {section['line']:g} (the at-risk line; "
                     f"{risk['observed_below']:.1%} of those cuts ended below): Brier score "
                     + ", ".join(versus) + " (lower is better).")
    return lines + ["", "Per horizon, per remaining semesters and the reliability table: evaluation.md.", ""]


def held_out(files: RunFiles) -> list[str]:
    lines = ["## Held-out test split", "",
             f"| target | model MAE | {COVERAGE_KEY} | best baseline | its MAE | persistence MAE |",
             "|---|---|---|---|---|---|"]
    for target, scores in files.record.test.items():
        best = scores.best_baseline
        lines.append(f"| {target} | {scores.mae('model'):.4f} | {scores.model[COVERAGE_KEY]:.3f} | {best} | "
                     f"{scores.mae(best):.4f} | {scores.mae('persistence'):.4f} |")
    return lines + [""]


def parity(files: RunFiles) -> list[str]:
    report = files.parity
    if report is None:
        return []
    return ["## ONNX parity (`cgpa verify`)",
            f"{'passed' if report['passed'] else 'FAILED'}: max abs difference {report['max_abs_diff']:.3g} "
            f"over {report['samples']} inputs (tolerance {report['tolerance']:g}).", ""]


def speed(files: RunFiles) -> list[str]:
    bench = files.bench
    if bench is None:
        return []
    lines = ["## Speed and size (`cgpa bench`, one thread, same run)", "",
             f"| backend | batch-1 p50 µs | p99 µs | predictions/s at batch {bench['batch']} |", "|---|---|---|---|"]
    for name in ("torch", "onnx", "onnx_int8", "torch_detail", "onnx_detail"):
        if name in bench:
            b = bench[name]
            lines.append(f"| {name} | {b['p50_us']:.1f} | {b['p99_us']:.1f} | {b['throughput_per_s']:,.0f} |")
    if "onnx_detail" in bench:
        lines += ["", "`*_detail`: explain.onnx (the why and the rest of the degree) and torch's same computation."]
    floor = (f" session.run alone takes {bench['graph']['model_p50_us']:.1f} µs, "
             f"{bench['graph']['over_floor']:.1f}x onnxruntime's per-call floor (a one-node graph with the same inputs "
             "and three outputs)." if "graph" in bench else "")
    return lines + ["", f"onnxruntime is {bench['ratio']['p50_speedup']:.1f}x faster than torch eager at batch 1; "
                    f"model.onnx is {bench['onnx_bytes'] / 1024:.1f} KB"
                    + (f" ({bench['onnx_nodes']} nodes)." if "onnx_nodes" in bench else ".") + floor, ""]


def limits(files: RunFiles) -> list[str]:
    return ["## Intended use and limits",
            "- For academic advisors to spot students who may need support, alongside their own judgement; "
            "never as the sole basis for a decision about a student.",
            f"- Trained on {files.record.split.train_students} students of {len(files.record.colleges)} "
            f"groups on the {files.record.data.scale} scale; other institutions, scales or horizons need retraining. "
            "A group code not seen in training uses a shared 'unknown' slot, trained on students whose group was "
            "hidden.",
            "- Gender is not an input; evaluation.md reports the error per gender group.",
            f"- The interval is calibrated to cover {INTERVAL_LEVEL:.0%} of held-out students at each predicted "
            "semester on average, not for each student.", ""]


SECTIONS = (what_it_does, how_it_was_made, cross_validation, rest_of_degree, held_out, parity, speed, limits)


def render_model_card(run: RunDir) -> str:
    files = RunFiles.read(run)
    title = ["# Model card: cgpa-rnn next-semester grade forecaster", ""]
    if files is None:
        return "\n".join(title + ["No trained model in this directory yet (`cgpa train --out DIR`)."])
    if files.record.synthetic:
        title += ["**Trained on a SYNTHETIC cohort: these figures describe generated students, not real ones.**", ""]
    lines = front_matter(files) + title
    for section in SECTIONS:
        lines += section(files)
    return "\n".join(lines)


def write_model_card(run: str | Path | RunDir) -> None:
    run = RunDir.of(run)
    run.write_text(RunDir.CARD, render_model_card(run))
