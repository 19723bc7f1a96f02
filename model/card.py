"""The model card: rendered from a run directory's JSON files, never typed by hand.

Each command that writes one of those files (train, evaluate, export, verify, bench)
re-renders MODEL_CARD.md, and the demo's About tab shows the same text.
"""
from __future__ import annotations

import json
from pathlib import Path

from data.artifacts import write_text
from model.metrics import best_baseline

CARD_NAME = "MODEL_CARD.md"


def _read(run: Path, name: str) -> dict | None:
    path = run / name
    return json.loads(path.read_text()) if path.is_file() else None


def render_model_card(run: str | Path) -> str:
    run = Path(run)
    config, metrics = _read(run, "config.json"), _read(run, "metrics.json")
    evaluation, parity, bench = _read(run, "evaluation.json"), _read(run, "parity.json"), _read(run, "bench.json")
    lines = ["# Model card: cgpa-rnn next-semester grade forecaster", ""]
    if metrics is None:
        return "\n".join(lines + ["No trained model in this directory yet (`cgpa train --out DIR`)."])
    synthetic = metrics["synthetic"]
    if synthetic:
        lines += ["**Trained on a SYNTHETIC cohort: these figures describe generated students, not real ones.**", ""]
    model = config["model"]
    lines += [
        "## What it does",
        f"Predicts a student's next-semester grade point average (0-10 scale) from the earlier semesters "
        f"and the college code, with an 80% prediction interval. Cell: `{model['cell']}`, hidden size "
        f"{model['hidden']}, {model['layers']} layer(s), ensemble of {model['ensemble']}, a linear "
        f"autoregressive skip with per-college offsets; weight decay {config['weight_decay']} chosen on "
        "validation students.",
        "",
        "## How it was made",
        f"- command: `{metrics.get('command') or 'cgpa train'}`",
    ]
    if evaluation is not None:
        source = evaluation["data"]["source"]
        lines.append(f"- data: {source.get('path', 'synthetic seed ' + str(source.get('seed')))}, "
                     f"{evaluation['data']['students']} students, fingerprint `{evaluation['data']['fingerprint']}`")
    split = metrics["split"]
    lines += [f"- held-out test split: {split['test_students']} students (seed {split['seed']}), "
              f"trained on {split['train_students']}; training took {metrics['train_seconds']} s", ""]
    if evaluation is not None:
        lines += [f"## Cross-validated accuracy ({evaluation['folds']}-fold x {evaluation['repeats']}, student-level)",
                  "", "| model | next: MAE ± fold sd | next: coverage80 | last: MAE ± fold sd | last: coverage80 |",
                  "|---|---|---|---|---|"]
        for group in ("models", "baselines"):
            for name, entry in evaluation[group].items():
                cells = []
                for target in ("next", "last"):
                    m = entry[target]
                    cells += [f"{m['mae']:.4f} ± {m['mae_fold_std']:.4f}", f"{m.get('coverage80', float('nan')):.3f}"
                              if "coverage80" in m else ""]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if "best_achievable" in evaluation:
            best = evaluation["best_achievable"]
            lines.append(f"| best achievable (known noise) | {best['next']:.4f} | | {best['last']:.4f} | |")
        cell = model["cell"]
        if cell in evaluation["models"]:
            for target in ("next", "last"):
                best, best_mae = best_baseline(evaluation, target)
                ours = evaluation["models"][cell][target]
                change = (ours["mae"] - best_mae) / best_mae
                lines.append(f"- `{target}`: the default `{cell}` is {abs(change):.1%} "
                             f"{'below' if change <= 0 else 'ABOVE'} the best baseline ({best}): MAE "
                             f"{ours['mae']:.4f} vs {best_mae:.4f}, fold spread ± {ours['mae_fold_std']:.4f}.")
        lines += ["", "`next`: every next semester from the earlier ones; `last`: the final semester from all "
                  "earlier ones. Full tables: evaluation.md.", ""]
    test = metrics["test"]
    lines += ["## Held-out test split", "", "| target | model MAE | coverage80 | ridge MAE | persistence MAE |",
              "|---|---|---|---|---|"]
    for target, entry in test.items():
        lines.append(f"| {target} | {entry['model']['mae']:.4f} | {entry['model']['coverage80']:.3f} | "
                     f"{entry['ridge']['mae']:.4f} | {entry['persistence']['mae']:.4f} |")
    lines.append("")
    if parity is not None:
        lines += ["## ONNX parity (`cgpa verify`)",
                  f"{'passed' if parity['passed'] else 'FAILED'}: max abs difference {parity['max_abs_diff']:.3g} "
                  f"over {parity['samples']} inputs (tolerance {parity['tolerance']:g}).", ""]
    if bench is not None:
        lines += ["## Speed and size (`cgpa bench`, one thread, same run)", "",
                  "| backend | batch-1 p50 µs | p99 µs | predictions/s at batch " + str(bench["batch"]) + " |",
                  "|---|---|---|---|"]
        for name in ("torch", "onnx", "onnx_int8"):
            if name in bench:
                b = bench[name]
                lines.append(f"| {name} | {b['p50_us']:.1f} | {b['p99_us']:.1f} | {b['throughput_per_s']:,.0f} |")
        lines += ["", f"onnxruntime is {bench['ratio']['p50_speedup']:.1f}x faster than torch eager at batch 1; "
                  f"model.onnx is {bench['onnx_bytes'] / 1024:.1f} KB.", ""]
    lines += ["## Intended use and limits",
              "- For academic advisors to spot students who may need support, alongside their own judgement; "
              "never as the sole basis for a decision about a student.",
              f"- Trained on {split['train_students']} students of {len(metrics['colleges'])} colleges on a "
              "10-point scale; other institutions, scales or horizons need retraining. A college code not seen in "
              "training uses a shared 'unknown' slot, trained on students whose college was hidden.",
              "- Gender is not an input; evaluation.md reports the error per gender group.",
              "- The interval is calibrated to cover 80% of held-out students on average, not for each student.", ""]
    return "\n".join(lines)


def write_model_card(run: str | Path) -> None:
    write_text(Path(run) / CARD_NAME, render_model_card(run))
