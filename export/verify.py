"""`cgpa verify`: the ONNX file must reproduce the torch checkpoint, and be exported from it.

Compared on every prefix of every training student (when the training data is at
hand) and on random students covering every history length, random gaps, unseen
college codes and inputs with nothing to predict, at batch sizes 1, 7 and all at once.
All differences are collected and reported per output before a verdict is given; the
file's metadata must describe the checkpoint (semesters, colleges). A failed verification
raises ParityError carrying the report, so no caller can overlook the verdict.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cgpa_rnn.data import missing_cohort_note, recorded_cohort
from cgpa_rnn.errors import ParityError
from cgpa_rnn.explanation import OUTPUTS as EXPLANATION_OUTPUTS
from cgpa_rnn.export.inputs import PARITY_SAMPLES, parity_inputs
from cgpa_rnn.export.onnx_export import description_problems
from cgpa_rnn.export.vectors import TOLERANCE, vector_problems  # one tolerance: parity and vectors
from cgpa_rnn.model.torch_predictor import TorchPredictor
from cgpa_rnn.predictor import OnnxPredictor, StaleModelError
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.trajectory import OUTPUTS as TRAJECTORY_OUTPUTS

OUTPUTS = ("prediction", "low", "high")
SINGLE_ROWS = 500  # rows also run one at a time (batch 1 is the latency path)


def _compare(reference, candidate, grades, college, entries, batch_label, names=OUTPUTS):
    for name, expected, actual in zip(names, reference, candidate):
        entry = entries[name]
        # Per row: an output with more axes (the hidden states) counts by its worst value.
        expected, actual = expected.reshape(len(grades), -1), actual.reshape(len(grades), -1)
        nan_mismatch = (np.isnan(expected) != np.isnan(actual)).any(1)
        difference = np.where(nan_mismatch, np.inf,
                              np.abs(np.nan_to_num(expected) - np.nan_to_num(actual)).max(1))
        relative = difference / np.maximum(np.abs(np.nan_to_num(expected)).max(1), 1e-6)
        worst = int(np.argmax(difference))
        if difference[worst] >= entry["max_abs_diff"]:
            entry.update(max_abs_diff=float(difference[worst]), worst_batch=batch_label,
                         worst_input={"grades": [None if np.isnan(g) else float(g) for g in grades[worst]],
                                       "college": int(college[worst])})
        entry["max_rel_diff"] = max(entry["max_rel_diff"], float(relative.max()))
        entry["nan_mismatches"] += int(nan_mismatch.sum())


def metadata_mismatches(torch_backend: TorchPredictor, onnx_backend: OnnxPredictor) -> list[str]:
    """Where what the file says about itself differs from the checkpoint it claims to be."""
    pairs = (("semesters", torch_backend.semesters, onnx_backend.semesters),
             ("colleges", list(torch_backend.colleges), list(onnx_backend.colleges)))
    return [f"metadata '{key}' is {stated} but the checkpoint has {actual}" for key, actual, stated in pairs
            if actual != stated]


def verify(run: str | Path | RunDir, samples: int | None = None, data: str | Path | None = None) -> dict:
    """Compare; `data` is the training CSV when it is not the shipped data set. Returns the
    report of a model that passed; raises ParityError (with the report) otherwise. `samples`:
    random students besides the training prefixes (default PARITY_SAMPLES)."""
    run, samples = RunDir.of(run), PARITY_SAMPLES if samples is None else samples
    torch_backend = TorchPredictor(run)
    onnx_backend = OnnxPredictor(run / RunDir.ONNX)
    source = torch_backend.record.data.source
    cohort = recorded_cohort(source, (data,) if data else ())
    has_data = cohort is not None
    grades, college = parity_inputs(cohort, torch_backend.semesters, torch_backend.colleges, samples,
                                    torch_backend.scale)
    reference = torch_backend.predict_batch(grades, college)
    report = {"tolerance": TOLERANCE, "samples": int(len(grades)), "training_prefixes_included": has_data,
              "training_data": None if has_data else missing_cohort_note(source),
              "outputs": {name: {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "nan_mismatches": 0} for name in OUTPUTS}}
    _compare(reference, onnx_backend.predict_batch(grades, college), grades, college, report["outputs"], len(grades))
    for batch in (1, 7):
        rows = slice(0, SINGLE_ROWS if batch == 1 else len(grades))
        outputs = [onnx_backend.predict_batch(grades[i:i + batch], college[i:i + batch])
                   for i in range(rows.start, rows.stop, batch)]
        candidate = [np.concatenate([o[k] for o in outputs]) for k in range(3)]
        _compare([r[rows] for r in reference], candidate, grades[rows], college[rows], report["outputs"], batch)
    # The explanation graph (explain.onnx: the why and the trajectory) against torch, on the same inputs:
    # with its default credits and line, then with every semester weighted differently and another line.
    names = (*EXPLANATION_OUTPUTS, *TRAJECTORY_OUTPUTS)
    report["explanation"] = {name: {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "nan_mismatches": 0}
                             for name in names}
    scale = torch_backend.scale
    options = ({}, {"credits": np.arange(1, torch_backend.semesters + 1, dtype=np.float32),
                    "below": scale.low + 0.75 * (scale.high - scale.low)})
    try:
        for option in options:
            explained = [backend.detail_batch(grades, college, **option) for backend in (torch_backend, onnx_backend)]
            _compare(*([parts[name] for name in names] for parts in explained), grades, college,
                     report["explanation"], len(grades), names)
        report["explanation_problems"] = []
    except StaleModelError as error:  # missing, damaged or from another checkpoint: part of the verdict
        report["explanation_problems"] = [str(error)]
    report["max_abs_diff"] = max(e["max_abs_diff"] for part in ("outputs", "explanation")
                                 for e in report[part].values())
    checkpoint_sha = torch_backend.payload["sha256"]  # hashed when the checkpoint was loaded
    report["checkpoint_sha256"] = checkpoint_sha
    report["onnx_checkpoint_sha256"] = onnx_backend.checkpoint_sha256
    report["fresh"] = checkpoint_sha == onnx_backend.checkpoint_sha256
    # The file's self-description and its conformance vectors are part of what an embedder is given.
    report["metadata_mismatches"] = (metadata_mismatches(torch_backend, onnx_backend)
                                     + description_problems(run / RunDir.ONNX))
    report["vector_problems"] = vector_problems(run, onnx_backend.predict_batch, checkpoint_sha,
                                                None if report["explanation_problems"] else onnx_backend.detail_batch)
    problems = report["metadata_mismatches"] + report["vector_problems"] + report["explanation_problems"]
    report["passed"] = bool(report["fresh"] and report["max_abs_diff"] <= TOLERANCE and not problems)
    run.write_json(RunDir.PARITY, report)
    if not report["passed"]:
        raise ParityError(f"{run / RunDir.ONNX} does not reproduce {run / RunDir.CHECKPOINT} (max difference "
                          f"{report['max_abs_diff']:.1e}{', stale' if not report['fresh'] else ''}"
                          f"{', metadata disagrees' if report['metadata_mismatches'] else ''}"
                          f"{', vectors disagree' if report['vector_problems'] else ''}"
                          f"{', explain.onnx does not match' if report['explanation_problems'] else ''}); see "
                          f"{run / RunDir.PARITY}", report)
    return report


def format_parity(report: dict) -> str:
    lines = [f"{report['samples']} inputs ({'training prefixes + ' if report['training_prefixes_included'] else ''}"
             f"random students), batch sizes 1, 7 and {report['samples']}; tolerance {report['tolerance']:g}"]
    if report.get("training_data"):
        lines.append(f"note: {report['training_data']}")
    headings = (("outputs", None),
                ("explanation", "explain.onnx against torch (the why of a forecast, the trajectory):"))
    for part, heading in headings:
        if heading and report.get(part):
            lines.append(heading)
        for name, entry in report.get(part, {}).items():
            lines.append(f"  {name:<10} max abs {entry['max_abs_diff']:.3g}  max rel {entry['max_rel_diff']:.3g}  "
                         f"NaN mismatches {entry['nan_mismatches']}  worst input {entry.get('worst_input')}")
    for mismatch in report.get("metadata_mismatches", ()):
        lines.append(f"METADATA: {mismatch}")
    for problem in report.get("vector_problems", ()):
        lines.append(f"VECTORS: {problem}")
    for problem in report.get("explanation_problems", ()):
        lines.append(f"EXPLANATION: {problem}")
    if not report["fresh"]:
        lines.append(f"STALE: model.onnx was exported from checkpoint {report['onnx_checkpoint_sha256'][:12]}, "
                     f"model.pt is {report['checkpoint_sha256'][:12]}; run `cgpa export` again")
    lines.append("PASSED" if report["passed"] else "FAILED")
    return "\n".join(lines)
