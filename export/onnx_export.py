"""`cgpa export`: one self-contained ONNX file per checkpoint, and its explanation graph.

Every cell has the same contract: a dynamic batch axis and the semester axis fixed at the
model's horizon. The tanh cells (the hand-written elman and nn.RNN) are built node by node
in their fused form (export/fused.py): the ensemble's weights folded into a few matrices,
about 40 nodes for five semesters. nn.GRU and nn.LSTM go through torch
2.13's default (dynamo) exporter and become native ONNX GRU/LSTM nodes (one per member of
the ensemble, as torch runs them). Tests prove parity for each cell.
explain.onnx is GradeForecaster.explain (cgpa_rnn.explanation) and the trajectory to graduation
(model/trajectory.py, cgpa_rnn.trajectory) exported as they are, with two optional inputs
whose defaults are stored in the file.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from cgpa_rnn import __version__
from cgpa_rnn.encoding import Scale
from cgpa_rnn.explanation import OUTPUTS as EXPLANATION_OUTPUTS
from cgpa_rnn.export.fused import fused_graph
from cgpa_rnn.export.vectors import write_vectors
from cgpa_rnn.model.checkpoint import VERSION as CHECKPOINT_VERSION
from cgpa_rnn.model.checkpoint import load_checkpoint
from cgpa_rnn.model.config import INTERVAL_LEVEL, QUANTILES
from cgpa_rnn.model.record import RunRecord
from cgpa_rnn.model.trajectory import trajectory
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.trajectory import OUTPUTS as TRAJECTORY_OUTPUTS

OPSET = 18
# The standard fields every ONNX viewer and runtime API shows (onnxruntime's get_modelmeta(),
# Netron, the C# and Java bindings): who made the file, under which licence, which version.
DOMAIN = "cgpa-rnn"
AUTHOR = "the cgpa-rnn authors"
LICENSE = "MIT"
# An int8 model is kept only when it moves predictions by less than this share of the scale on average:
# the folded input product of the tanh cells (export/fused.py) does not survive int8 weights.
MAX_INT8_CHANGE = 0.01


def input_doc(scale, groups) -> str:
    """What the two inputs mean for this model: its scale and how its group codes are written."""
    if groups.column is None:
        group = "college: int64 [batch], always 0 (this model has no group column)"
    elif groups.text:
        group = (f"college: int64 [batch], the code of the student's {groups.column}: 1 + its position in the "
                 "metadata's group_labels list (-1 or any other code: a shared 'unknown' embedding)")
    else:
        group = (f"college: int64 [batch], the raw {groups.column} code (an unseen code uses a shared 'unknown' "
                 "embedding)")
    return (f"grades: float32 [batch, semesters], raw grade points on the {scale} scale, semester 1 first, "
            f"NaN for a semester that is missing or not yet taken (pad short histories with NaN); {group}")



OUTPUT_DOC = ("prediction, low, high: float32 [batch], grade points of the semester after the last observed one: "
              f"the median and the {QUANTILES[0]:.0%}-{QUANTILES[-1]:.0%} quantiles ({INTERVAL_LEVEL:.0%} interval); "
              "NaN when there is nothing to predict (no grade observed, or the last semester of the horizon "
              "already observed)")


EXPLANATION_DOC = ("prediction, prior, correction, group_mean, deviation: float32 [batch], grade points of the "
                   "semester model.onnx predicts: prediction = prior + correction (the network's), prior = "
                   "group_mean + the student's smoothed deviation from the group's means times damping; damping: "
                   "float32 [batch]; hidden: float32 [batch, semesters - 1, members, units], the recurrent state "
                   "after each semester (index t has read semesters 1..t+1); NaN where model.onnx gives NaN. "
                   "trajectory, trajectory_low, trajectory_high: float32 [batch, semesters], each semester after "
                   "the last observed one: the median (each fed back as the next semester's grade) and its 80% "
                   "interval, calibrated per horizon; NaN for the others. final, final_low, final_high: float32 "
                   "[batch], the final CGPA (the credit-weighted mean of the known grades and the medians of the "
                   "unknown semesters, a missing one before the last known one included) and its 80% interval; "
                   "with every semester known, the actual CGPA. probability_below: float32 [batch], of a final "
                   "CGPA below the input `below` (0 or 1 with every semester known). NaN in every output for a "
                   "student with no grade.")


def optional_inputs_doc(model) -> str:
    return (f"optional inputs: credits float32 [{model.semesters}], each semester's weight in the final CGPA "
            f"(default: all 1); below float32 [], the line of probability_below (default "
            f"{model.scale.at_risk_line():g}, 60% of the way up the {model.scale} scale)")


class ExplanationGraph(nn.Module):
    """GradeForecaster.explain and the trajectory as one graph: the raw inputs plus credits and below,
    the outputs named by cgpa_rnn.explanation.OUTPUTS then cgpa_rnn.trajectory.OUTPUTS."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, grades: torch.Tensor, college: torch.Tensor, credits: torch.Tensor, below: torch.Tensor):
        parts = self.model.explain(grades, college) | trajectory(self.model, grades, college, credits, below)
        return tuple(parts[name] for name in (*EXPLANATION_OUTPUTS, *TRAJECTORY_OUTPUTS))


def _graph(module: nn.Module, semesters: int, output_names: list[str],
           defaults: dict[str, torch.Tensor] | None = None) -> onnx.ModelProto:
    """`module` (raw grades and college codes in, then `defaults`' inputs) as an ONNX graph, without what an
    embedder does not need. Each of `defaults` is stored in the file as its input's default value, so a
    caller may leave it out."""
    defaults = defaults or {}
    batch = torch.export.Dim("batch", min=1)
    # Two rows: with a batch of one the exporter would specialise the batch axis to 1.
    example = (torch.tensor([[7.0, 6.5] + [float("nan")] * (semesters - 2)] * 2), torch.tensor([0, 1]),
               *defaults.values())
    names = ["grades", "college", *defaults]
    with warnings.catch_warnings():
        # The exporter's deprecation notices and torchvision-missing lines are about torch
        # internals, not this model; parity is what proves the export right.
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(module, example, dynamo=True, opset_version=OPSET, external_data=False,
                                    input_names=names, output_names=output_names,
                                    dynamic_shapes=[{0: batch}, {0: batch}, *[None] * len(defaults)], verbose=False)
    proto = program.model_proto
    for node in proto.graph.node:
        # The exporter records Python stack traces per node: large, and they leak local paths.
        del node.metadata_props[:]
        node.doc_string = ""
    # Intermediate shape annotations are optional; the exporter's trip up onnxruntime's
    # quantizer (its reshape of the fused input product), and dropping them saves a third.
    del proto.graph.value_info[:]
    for name, value in defaults.items():  # an initializer named like an input is that input's default
        proto.graph.initializer.append(onnx.numpy_helper.from_array(value.numpy(), name))
    return proto


def export_onnx(run: str | Path | RunDir) -> Path:
    """Export the run's checkpoint to its ONNX file and its explanation graph (each atomically)
    and return the ONNX file's path."""
    run = RunDir.of(run)
    model, payload = load_checkpoint(run)
    proto = fused_graph(model, OPSET)
    exporter = None if proto is None else f"cgpa_rnn.export.fused (built node by node), onnx {onnx.__version__}"
    proto = proto or _graph(model, model.semesters, ["prediction", "low", "high"])
    describe(proto, model, payload, exporter=exporter)
    onnx.checker.check_model(proto, full_check=True)
    defaults = {"credits": torch.ones(model.semesters), "below": torch.tensor(model.scale.at_risk_line())}
    explanation = _graph(ExplanationGraph(model).eval(), model.semesters,
                         [*EXPLANATION_OUTPUTS, *TRAJECTORY_OUTPUTS], defaults)
    describe(explanation, model, payload, name="forecast_explanation_and_trajectory", outputs=EXPLANATION_DOC)
    set_metadata(explanation, {p.key: p.value for p in explanation.metadata_props}
                 | {"optional_inputs": optional_inputs_doc(model)})
    onnx.checker.check_model(explanation, full_check=True)
    with run.atomic(RunDir.ONNX) as temporary:
        onnx.save_model(proto, temporary)
    with run.atomic(RunDir.EXPLANATION) as temporary:
        onnx.save_model(explanation, temporary)
    write_vectors(run, (model, payload))
    return run / RunDir.ONNX


def _version(name: str) -> str:
    try:
        return package_metadata.version(name)
    except package_metadata.PackageNotFoundError:
        return "not installed"


def model_version(payload: dict) -> int:
    """The checkpoint format and the training date, e.g. 120261129: format 1, trained 2026-11-29."""
    trained_on = payload.get("trained_on", "0000-00-00").replace("-", "")
    return CHECKPOINT_VERSION * 100_000_000 + int(trained_on)


def doc_string(model, payload: dict) -> str:
    record = RunRecord.from_payload(payload)
    cohort = "a SYNTHETIC cohort" if record.synthetic else f"the cohort {record.data.source.get('name')}"
    return (f"cgpa-rnn {record.cell} network trained on {cohort}: predicts a student's "
            f"grade point average ({record.data.scale} scale) in the semester after the last observed one, with an "
            f"{INTERVAL_LEVEL:.0%} prediction interval. Inputs: grades float32 [batch, {model.semesters}] and college "
            "int64 [batch] (the metadata key 'inputs' says how to fill them). Outputs: prediction, low, "
            f"high float32 [batch] (median, {QUANTILES[0]:.0%} and {QUANTILES[-1]:.0%} quantiles), NaN where there "
            "is nothing to predict. No preprocessing is needed outside the graph; vectors.json beside the file "
            "holds cases to check an integration with.")


def describe(proto: onnx.ModelProto, model, payload: dict, name: str = "next_semester_forecast",
             outputs: str = OUTPUT_DOC, exporter: str | None = None) -> None:
    """The standard fields, then our own keys for an embedder who has only the file."""
    proto.domain = DOMAIN
    proto.model_version = model_version(payload)
    proto.doc_string = doc_string(model, payload)
    proto.producer_name = "cgpa-rnn"
    proto.producer_version = __version__
    proto.graph.name = name
    set_metadata(proto, _metadata(model, payload) | {"outputs": outputs}
                 | ({"exporter": exporter} if exporter else {}))


STANDARD_KEYS = ("model_author", "model_license", "interval_level")


def description_problems(path: str | Path) -> list[str]:
    """What `cgpa verify` finds missing in the file's self-description (empty when complete)."""
    proto = onnx.load(str(path), load_external_data=False)
    problems = [f"{field} is not set" for field in ("domain", "model_version", "doc_string", "producer_version")
                if not getattr(proto, field)]
    if proto.producer_name != "cgpa-rnn":
        problems.append(f"producer_name is {proto.producer_name!r}, not 'cgpa-rnn'")
    keys = {p.key: p.value for p in proto.metadata_props}
    problems += [f"metadata key {key!r} is missing" for key in STANDARD_KEYS if not keys.get(key)]
    return problems


def _metadata(model, payload: dict) -> dict[str, str]:
    record = RunRecord.from_payload(payload)
    data = record.data
    return {
        "model_author": AUTHOR,
        "model_license": LICENSE,
        "interval_level": str(INTERVAL_LEVEL),
        "inputs": input_doc(data.scale, data.groups),
        "outputs": OUTPUT_DOC,
        "units": f"grade points, {data.scale} scale",
        "scale": str(data.scale),
        "group_column": json.dumps(data.groups.column),
        "group_labels": json.dumps(None if data.groups.labels is None else list(data.groups.labels)),
        "training_grades": json.dumps({"mean": round(float(model.grade_mean), 6),
                                       "std": round(float(model.grade_std), 6)}),
        "semester_axis": f"fixed at {model.semesters}; batch axis dynamic",
        "semesters": str(model.semesters),
        "semester_names": json.dumps(data.semester_names),
        "colleges": json.dumps(model.college_codes.tolist()),
        "cell": record.cell,
        "config": json.dumps(record.config.to_dict()),
        "checkpoint_sha256": payload["sha256"],
        "data_source": json.dumps(data.source),
        "data_fingerprint": data.fingerprint,
        "synthetic_data": str(data.synthetic).lower(),
        "metrics": json.dumps(_file_metrics(record)),
        "exporter": f"torch.onnx dynamo exporter, torch {torch.__version__}",
        "opset": str(OPSET),
        "versions": json.dumps({name: _version(name) for name in ("torch", "onnx", "onnxscript", "onnxruntime")}
                               | {"cgpa-rnn": __version__}),
    }


def _file_metrics(record: RunRecord) -> dict:
    """The test metrics, rounded and without the per-semester breakdown (the run's metrics.json keeps both):
    the file stays small."""
    return _significant({target: {name: {key: value for key, value in score.items() if key != "by_semester"}
                                  for name, score in scores.to_dict().items()}
                         for target, scores in record.test.items()})


def _significant(value, digits: int = 4):
    """Floats rounded to `digits` significant digits, in any nesting: the file's metrics stay readable and
    small (the run's metrics.json keeps every digit)."""
    if isinstance(value, dict):
        return {key: _significant(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [_significant(item, digits) for item in value]
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def set_metadata(proto: onnx.ModelProto, values: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in values.items():
        proto.metadata_props.add(key=key, value=value)


@contextmanager
def quiet_root_logger():
    """onnxruntime's quantizer logs advice meant for image models on the root logger;
    silence it for the call only, not for the whole process."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize(run: str | Path | RunDir, inputs: tuple[np.ndarray, np.ndarray]) -> dict:
    """Write run/model.int8.onnx where dynamic int8 quantization changes the graph, and report.

    onnxruntime's dynamic quantization covers MatMul/Gemm and LSTM weights; it has no
    kernel for GRU or RNN nodes. When nothing in the graph is quantized, the result moves
    predictions (more than MAX_INT8_CHANGE of the scale on average, or NaN where fp32 has
    none) or is not smaller, no file is written and the report says why."""
    import onnxruntime as ort
    from onnxruntime.quantization import quantize_dynamic

    run = RunDir.of(run)
    source, target = run / RunDir.ONNX, run / RunDir.INT8
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / RunDir.INT8
        try:
            with quiet_root_logger():
                quantize_dynamic(source, candidate)
        except Exception as error:  # the quantizer raises many types; the export itself stays valid
            target.unlink(missing_ok=True)
            return {"written": False, "reason": f"onnxruntime's quantizer cannot process this graph ({error})"}
        proto = onnx.load(candidate)
        quantized_ops = sorted({n.op_type for n in proto.graph.node
                                if "Integer" in n.op_type or n.op_type.startswith("DynamicQuantize")})
        report = {"fp32_bytes": os.path.getsize(source), "int8_bytes": os.path.getsize(candidate),
                  "quantized_ops": quantized_ops, "written": False,
                  "float_recurrent_ops": sorted({n.op_type for n in proto.graph.node} & {"GRU", "RNN"})}
        if not quantized_ops:
            report["reason"] = "no operator of this graph has an int8 kernel in onnxruntime"
        else:
            outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
                None, {"grades": inputs[0], "college": inputs[1]})[0] for p in (source, candidate)]
            valid = ~np.isnan(outputs[0])
            change = np.abs(outputs[0][valid] - outputs[1][valid])  # NaN where int8 alone gives NaN
            report.update(max_abs_change=float(change.max(initial=0.0)), samples=int(valid.sum()),
                          mean_abs_change=float(change.mean()) if valid.any() else 0.0)
            scale = Scale.parse({p.key: p.value for p in onnx.load(source).metadata_props}["scale"])
            if not np.array_equal(valid, ~np.isnan(outputs[1])):
                report["reason"] = "int8 gives NaN where the fp32 model predicts, or a prediction where it gives NaN"
            elif report["mean_abs_change"] > MAX_INT8_CHANGE * (scale.high - scale.low):
                report["reason"] = (f"int8 moves predictions by {report['mean_abs_change']:.3g} grade points on "
                                    f"average, more than {MAX_INT8_CHANGE:.0%} of the {scale} scale")
            elif report["int8_bytes"] >= report["fp32_bytes"]:
                report["reason"] = (f"the int8 file ({report['int8_bytes']} B) is not smaller than fp32 "
                                    f"({report['fp32_bytes']} B): too few weights for quantization to pay")
            else:
                report["written"] = True
                with run.atomic(RunDir.INT8) as temporary:
                    shutil.copyfile(candidate, temporary)
    if not report["written"]:
        target.unlink(missing_ok=True)  # an older int8 file would no longer match model.onnx
    return report
