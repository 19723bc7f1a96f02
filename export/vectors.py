"""Conformance vectors: named cases an embedder in any language checks their integration with.

`vectors.json` sits beside model.onnx. Each case holds the graph's inputs exactly as it
takes them (`grades` float32 [batch, semesters] with JSON null for NaN, `college` int64
[batch]) and the outputs the torch checkpoint gives for them, which every runtime must
reproduce within the stated tolerance. The cases are where runtimes and execution
providers differ in practice: NaN for a missing semester, int64 codes far outside the
known colleges, the edges of the grade scale, nothing to predict, batches.
Each case also holds explain.onnx's trajectory outputs (`trajectory`: the rest of the degree,
cgpa_rnn.trajectory.OUTPUTS) for the same inputs, with the file's default credits and line
unless the case gives `options` (`credits` [semesters], `below`) to feed as well.
Our own Python, Node and browser tests check the same file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.model.checkpoint import load_checkpoint
from cgpa_rnn.model.trajectory import trajectory
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.trajectory import OUTPUTS as TRAJECTORY_OUTPUTS

TOLERANCE = 1e-5  # fp32, absolute, in grade points: `cgpa verify`'s parity and every vector
NAN = float("nan")
FAR_CODE = 2**62  # an int64 no college has: runtimes that narrow int64 to int32 get this wrong


def _history(semesters: int, known: list[float]) -> list[float]:
    """`known` as the first semesters, the rest not yet taken (NaN)."""
    return (known + [NAN] * semesters)[:semesters]


def named_cases(semesters: int, colleges: list[int], scale: Scale = DEFAULT_SCALE
                ) -> list[tuple[str, str, list[list[float]], list[int]]]:
    """(name, description, grades rows, college codes) for a model of this horizon, colleges and scale."""
    first, last = colleges[0], colleges[-1]
    unknown = max(colleges) + 1
    low, high = scale.low, scale.high
    typical = [round(low + (high - low) * g / 10, 2)  # the same places on any scale as 7.1, 6.8, ... on 0-10
               for g in (7.1, 6.8, 7.3, 7.6, 7.0, 7.2, 6.9, 7.4, 7.5, 7.1, 6.7, 7.8)][:semesters]
    cases = [(f"history_of_{n}", f"semesters 1-{n} known, predict semester {n + 1}",
              [_history(semesters, typical[:n])], [first]) for n in range(1, semesters)]
    if semesters >= 3:
        gap = list(typical[:semesters - 1])
        gap[1] = NAN
        cases.append(("gap_in_the_middle", "semester 2 missing: NaN inside the history", [_history(semesters, gap)],
                      [first]))
        cases.append(("first_semester_missing", "the history starts with NaN",
                      [[NAN] + typical[1:semesters - 1] + [NAN]], [first]))
    cases += [
        ("every_known_college", "the same history at each college the model knows",
         [_history(semesters, typical[:semesters - 1])] * len(colleges), list(colleges)),
        ("unknown_college", "a code not seen in training: the shared 'unknown' embedding",
         [_history(semesters, typical[:semesters - 1])], [unknown]),
        ("negative_college", "a negative int64 code is unknown too", [_history(semesters, typical[:2])], [-1]),
        ("far_int64_college", f"college {FAR_CODE}: needs the full int64 range", [_history(semesters, typical[:2])],
         [FAR_CODE]),
        ("all_zero", "the bottom of the scale", [_history(semesters, [low] * (semesters - 1))], [last]),
        ("all_ten", "the top of the scale", [_history(semesters, [high] * (semesters - 1))], [last]),
        ("zero_then_ten", "the largest jump the scale allows", [_history(semesters, [low, high])], [last]),
        ("nothing_observed", "no grade at all: every output is NaN", [[NAN] * semesters], [first]),
        ("horizon_complete", "the last semester of the horizon is known: nothing left, every output NaN",
         [typical[:semesters]], [first]),
    ]
    mixed = [rows[0] for _, _, rows, _ in cases] + [[NAN] * semesters]
    mixed_colleges = [codes[0] for _, _, _, codes in cases] + [last]
    cases.append(("mixed_batch", "every case above in one batch, and an empty row: rows never affect each other",
                  mixed, mixed_colleges))
    return cases


def case_options(name: str, semesters: int, scale: Scale) -> dict:
    """The optional inputs a case feeds explain.onnx: one case weights the semesters and moves the line."""
    if name != "history_of_1":
        return {}
    return {"credits": [float(t + 1) for t in range(semesters)],
            "below": round(scale.low + 0.75 * (scale.high - scale.low), 2)}


def _nested(values) -> list:
    """An array as JSON lists, NaN as null."""
    array = np.asarray(values, dtype=np.float64)
    return [_nested(row) for row in array] if array.ndim else _json_number(float(array))


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def write_vectors(run: str | Path | RunDir, checkpoint: tuple | None = None) -> Path:
    """Compute the torch checkpoint's outputs for every named case; write run/vectors.json atomically.
    `checkpoint`: the (model, payload) already loaded from the run, if the caller has them."""
    run = RunDir.of(run)
    model, payload = checkpoint or load_checkpoint(run)
    cases = []
    for name, description, rows, codes in named_cases(model.semesters, model.college_codes.tolist(), model.scale):
        grades = np.asarray(rows, dtype=np.float32)
        college = np.asarray(codes, dtype=np.int64)
        options = case_options(name, model.semesters, model.scale)
        with torch.inference_mode():
            outputs = model(torch.from_numpy(grades), torch.from_numpy(college))
            ahead = trajectory(model, torch.from_numpy(grades), torch.from_numpy(college),
                               *(torch.tensor(options[key], dtype=torch.float32) if key in options else None
                                 for key in ("credits", "below")))
        cases.append({
            "name": name, "description": description,
            "inputs": {"grades": [[_json_number(g) for g in row] for row in grades.tolist()],
                       "college": college.tolist()},
            "outputs": {key: [_json_number(v) for v in output.tolist()]
                        for key, output in zip(("prediction", "low", "high"), outputs)},
            **({"options": options} if options else {}),
            "trajectory": {key: _nested(ahead[key]) for key in TRAJECTORY_OUTPUTS},
        })
    document = {
        "about": ("Conformance vectors for model.onnx and explain.onnx: feed each case's inputs to model.onnx "
                  "(null = NaN; grades float32 [batch, semesters], college int64 [batch]) and compare every "
                  "output with the expected one: equal NaN-ness, and an absolute difference within the "
                  "tolerance. Feed the same inputs to explain.onnx, with the case's `options` (credits float32 "
                  "[semesters], below float32 []) when it has them, and compare its outputs named in "
                  "`trajectory` the same way."),
        "trajectory_model": "explain.onnx",
        "model": RunDir.ONNX,
        "checkpoint_sha256": payload["sha256"],
        "semesters": model.semesters,
        "tolerance": {"absolute": TOLERANCE},
        "cases": cases,
    }
    with run.atomic(RunDir.VECTORS) as temporary:
        Path(temporary).write_text(json.dumps(document, indent=1) + "\n")
    return run / RunDir.VECTORS


def check_vectors(run: str | Path | RunDir, infer, detail=None) -> list[str]:
    """Every case of run/vectors.json through `infer(grades, college) -> (prediction, low, high)` and, given,
    `detail(grades, college, credits, below) -> {name: output}` (a predictor's detail_batch); returns one line
    per output that disagrees (empty when all agree)."""
    return _check_cases(RunDir.of(run).read_json(RunDir.VECTORS), infer, detail)


def _check_cases(document: dict, infer, detail=None) -> list[str]:
    tolerance = document["tolerance"]["absolute"]
    failures = []

    def compare(case: dict, key: str, expected_json, actual) -> None:
        expected = np.array(expected_json, dtype=np.float64)  # null (None) reads as NaN
        actual = np.asarray(actual, dtype=np.float64)
        nan_differs = np.isnan(expected) != np.isnan(actual)
        difference = np.nan_to_num(np.abs(expected - actual), nan=0.0)
        if nan_differs.any() or difference.max(initial=0.0) > tolerance:
            failures.append(f"{case['name']}: {key} expected {expected_json}, got {actual.tolist()}")

    for case in document["cases"]:
        grades = np.array(case["inputs"]["grades"], dtype=np.float32)  # null (None) reads as NaN
        college = np.array(case["inputs"]["college"], dtype=np.int64)
        for key, actual in zip(("prediction", "low", "high"), infer(grades, college)):
            compare(case, key, case["outputs"][key], actual)
        if detail is not None:
            options = case.get("options", {})
            credits = np.array(options["credits"], dtype=np.float32) if "credits" in options else None
            outputs = detail(grades, college, credits, options.get("below"))
            for key, expected in case["trajectory"].items():
                compare(case, key, expected, outputs[key])
    return failures


def vector_problems(run: str | Path | RunDir, infer, checkpoint_sha256: str, detail=None) -> list[str]:
    """What `cgpa verify` finds wrong with run/vectors.json: missing, written for another
    checkpoint, or a case that `infer` does not reproduce (empty when all is well)."""
    run = RunDir.of(run)
    document = run.read_json(RunDir.VECTORS)
    if document is None:
        return [f"{run / RunDir.VECTORS} is missing; run `cgpa export {run}`"]
    if document.get("checkpoint_sha256") != checkpoint_sha256:
        return [f"{run / RunDir.VECTORS} was written for another checkpoint; run `cgpa export {run}`"]
    return [f"{RunDir.VECTORS}: {line}" for line in _check_cases(document, infer, detail)]
