"""model.onnx for a tanh-recurrent forecaster, built node by node: the ensemble in about 40 nodes.

onnxruntime spends its time per node, not per multiply, on a model this small (about 0.3 µs
each): traced as written, the ensemble is a few hundred nodes. Here the trained weights are
folded, once, into a few matrices:

    features   [grades (NaN -> the mean), missing flags, college one-hot]
    Gemm       every linear function of them the graph reads (_Features): each step's input
               (the model's own step features), the steps' deviations, counts of observed
               semesters, the expected grades
    recurrence h_t = tanh(x_t W_xh + b_h + h_{t-1} W_hh), the members side by side (W_hh
               block-diagonal), unrolled over the fixed horizon; the state of each student's
               last observed semester gathered
    prior      the smoothed level multiplied out (_level_exponent): exp(counts x log alpha,
               log(1 - alpha)) weights each step's deviation
    by_last    one row per last observed semester 0..S (0 and S: nothing to predict, NaN):
               phi, the interval scale and 1, multiplied into [state, level, softplus gaps,
               expected grade]
    Gemm       the output layers and the ensemble mean in grade points, transposed so that
               one Split gives each of prediction, low and high its own [batch]

It applies to the `elman` and `rnn` cells with one layer (the same tanh recurrence); the
GRU and LSTM (model.network.TorchCell) export through torch's exporter as native nodes.
tests/test_export.py compares this graph with GradeForecaster.forward for every input class.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from cgpa_rnn.model.network import GAP_OFFSET, ElmanCell, GradeForecaster

FUSABLE_CELLS = ("elman", "rnn")
IR_VERSION = 10
BIG = 1e4  # exp(-BIG) is 0 in float32: a missing semester's weight in the level


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def _recurrent_weights(model: GradeForecaster) -> tuple[np.ndarray, ...]:
    """Per member: W_xh [E, inputs, H], b_h [E, H], W_hh [E, H, H] (h @ W), float64; nn.RNN's weights
    are stored the other way round ([E, H, inputs]) and its bias in two halves."""
    recurrent = model.recurrent
    if isinstance(recurrent, ElmanCell):
        weights = (recurrent.W_xh, recurrent.b_h, recurrent.W_hh)
    else:
        weights = (recurrent.weight_ih_l0.transpose(1, 2), recurrent.bias_ih_l0 + recurrent.bias_hh_l0,
                   recurrent.weight_hh_l0.transpose(1, 2))
    return tuple(_numpy(w) for w in weights)


class _Features:
    """The input Gemm: features [B, 2S + V] -> these blocks, each a linear function of the features:

    steps      [T x (3 + T)] each step's input: x_t = (grade - mean) / std (0 when missing), the deviation
               from the college mean, the missing flag, the position one-hot (GradeForecaster.inputs)
    deviation  [T] each step's deviation again, for the prior
    counts     [T x 4] per step: observed_t - (observed before t), observed after t (to the last step),
               missing_t, 1 (Relu leaves all but the first as they are; the first becomes 1 at the first
               observed semester, else 0)
    observed   [S + 1] 1/2, then t + 1 where semester t is observed, else 0: its arg max is the last
               observed semester, 1-based (0: none)
    expected   [S + 1] at t + 1, the prior's expected grade of step t's next semester, in grade points
               (the members' mean); positions 0 and S repeat a neighbour"""

    def __init__(self, model: GradeForecaster):
        S, V = model.semesters, model.college_codes.numel()
        T = S - 1
        self.semesters, self.step_width = S, 3 + T
        self.blocks = [self.step_width] * T + [T, 4 * T, S + 1, S + 1]
        self.weight = np.zeros((2 * S + V, sum(self.blocks)))
        self.bias = np.zeros(sum(self.blocks))
        deviation, counts, observed, expected = T * self.step_width + np.cumsum([0, *self.blocks[T:-1]])
        mean, std = float(model.grade_mean), float(model.grade_std)
        college_mean = _numpy(model.college_mean)  # [V+1, S] normalised, row 0: unknown
        expected_grade = college_mean[:, 1:] + _numpy(model.prior_shift) + _numpy(model.college_offset).mean(0)
        for t in range(T):
            start = t * self.step_width  # x_t, its deviation, its missing flag, the position one-hot
            x, step_deviation = start, start + 1
            for column in (x, step_deviation, deviation + t):
                self.weight[t, column], self.bias[column] = 1 / std, -mean / std  # NaN became the mean: x_t = 0
            for column in (step_deviation, deviation + t):
                self.college_term(column, -college_mean[:, t])
            self.weight[S + t, start + 2] = 1.0
            self.bias[start + 3 + t] = 1.0
            first, after, missing, one = counts + 4 * t + np.arange(4)
            self.observed_count(first, [t], 1.0)
            self.observed_count(first, range(t), -1.0)
            self.observed_count(after, range(t + 1, T), 1.0)
            self.weight[S + t, missing], self.bias[one] = 1.0, 1.0
        for position in range(S + 1):
            step = min(max(position - 1, 0), T - 1)
            self.college_term(expected + position, expected_grade[:, step] * std + mean)
        self.bias[observed] = 0.5
        for t in range(S):
            self.observed_count(observed + t + 1, [t], t + 1.0)

    def observed_count(self, column: int, semesters, factor: float) -> None:
        """Add factor x (observed flag) of each semester to `column`: observed is 1 - missing."""
        for s in semesters:
            self.weight[self.semesters + s, column] -= factor
            self.bias[column] += factor

    def college_term(self, column: int, table: np.ndarray) -> None:
        """Add table[index] (a [V+1] column, row 0: unknown) to `column`, linear in the college one-hot."""
        self.weight[2 * self.semesters:, column] += table[1:] - table[0]
        self.bias[column] += table[0]


def _level_exponent(model: GradeForecaster) -> np.ndarray:
    """[4, E]: from a step's counts (first observed, observed after, missing, 1) the log of its weight in
    each member's smoothed level. The level after the last observed semester is sum_t w_t d_t with
    w_t = alpha^[t is not the first observed] (1 - alpha)^(observed after t), 0 for a missing t:
    GradeForecaster's recurrence level += gain (d_t - level), multiplied out."""
    alpha = _numpy(torch.sigmoid(model.prior_smoothing + model.smoothing))  # [E]
    log_alpha, log_rest = np.maximum(np.log(alpha), -80), np.maximum(np.log1p(-alpha), -80)
    return np.stack([-log_alpha, log_rest, -log_alpha - BIG, log_alpha])


def _by_last(model: GradeForecaster) -> np.ndarray:
    """[S + 1, EH + 3E + 1]: what multiplies [state, level, softplus gaps, expected grade] by the last observed
    semester's number: 1, phi of its step, its interval scale, 1; NaN at 0 and S (nothing to predict)."""
    S, E, H = model.semesters, model.members, model.config.hidden
    damping = _numpy(model.prior_damping + model.damping)  # [E, T]
    interval = _numpy(model.interval_scale)  # [T]
    table = np.ones((S + 1, E * H + 3 * E + 1))
    table[[0, S], -1] = np.nan
    for t in range(S - 1):
        table[t + 1, E * H:E * H + E] = damping[:, t]
        table[t + 1, E * H + E:E * H + 3 * E] = interval[t]
    return table


def _output_layers(model: GradeForecaster) -> tuple[np.ndarray, ...]:
    """The gaps before softplus from the state ([EH, 2E], [2E]), and (low, median, high) in grade points
    from [state, phi x level, scaled gaps, expected grade] ([EH + 3E + 1, 3], [3, 1])."""
    E, H = model.members, model.config.hidden
    EH, std = E * H, float(model.grade_std)
    head, head_bias = _numpy(model.recurrent.W_hy), _numpy(model.recurrent.b_y)  # [E, H, 3], [E, 3]
    gap_weight = np.zeros((EH, 2 * E))
    output_weight = np.zeros((EH + 3 * E + 1, 3))
    for e in range(E):
        member = slice(e * H, (e + 1) * H)
        gap_weight[member, e], gap_weight[member, E + e] = head[e, :, 1], head[e, :, 2]
        output_weight[member, :] = head[e, :, 0:1] * std / E
    output_weight[EH:EH + E, :] = std / E  # the ensemble's mean, de-normalised
    output_weight[EH + E:EH + 2 * E, 0], output_weight[EH + 2 * E:EH + 3 * E, 2] = -std / E, std / E
    output_weight[-1, :] = 1.0
    gap_bias = np.concatenate([head_bias[:, 1], head_bias[:, 2]]) + GAP_OFFSET
    return gap_weight, gap_bias, output_weight, np.full((3, 1), head_bias[:, 0].sum() * std / E)


def fused_graph(model: GradeForecaster, opset: int) -> onnx.ModelProto | None:
    """model.onnx's graph (inputs grades, college; outputs prediction, low, high) for a one-layer tanh
    cell, else None (export the model as it is)."""
    if model.config.cell not in FUSABLE_CELLS or model.config.layers != 1:
        return None
    S, E, H = model.semesters, model.members, model.config.hidden
    T, EH = S - 1, E * H
    features = _Features(model)
    w_in, b_in, w_hh = _recurrent_weights(model)
    gap_weight, gap_bias, output_weight, output_bias = _output_layers(model)
    weights = {
        "mean": np.full(S, float(model.grade_mean)), "codes": model.college_codes.numpy(),
        "feature_weight": features.weight, "feature_bias": features.bias, "blocks": np.array(features.blocks),
        # The members side by side: W_xh [inputs, EH] (each member's columns), b_h [EH], W_hh block-diagonal.
        "W_xh": np.concatenate([w_in[e, :features.step_width] for e in range(E)], axis=1), "b_h": b_in.reshape(-1),
        **({"W_hh": torch.block_diag(*torch.from_numpy(w_hh)).numpy()} if T > 1 else {}),  # one step reads none
        "exponent": _level_exponent(model), "by_last": _by_last(model),
        "gap_weight": gap_weight, "gap_bias": gap_bias, "output_weight": output_weight, "output_bias": output_bias,
        "scale_low": np.array(model.scale.low), "scale_high": np.array(model.scale.high),
        "column": np.array([-1, 1]), "flat": np.array([-1]),
        "by_step": np.array([0, S + 1, EH]), "count_rows": np.array([0, T, 4]), "deviation_rows": np.array([0, T, 1]),
        "step_axis": np.array([1])}
    initializers = [numpy_helper.from_array(value.astype(np.int64 if value.dtype.kind == "i" else np.float32), name)
                    for name, value in weights.items()]
    steps, states = [f"step_{t}" for t in range(T)], [f"state_{t}" for t in range(T)]
    node = helper.make_node
    nodes = [
        node("IsNaN", ["grades"], ["missing"]),
        node("Where", ["missing", "mean", "grades"], ["cleaned"]),
        node("Cast", ["missing"], ["flags"], to=TensorProto.FLOAT),
        node("Reshape", ["college", "column"], ["college_column"]),
        node("Equal", ["college_column", "codes"], ["matches"]),  # no match: the unknown college
        node("Cast", ["matches"], ["one_hot"], to=TensorProto.FLOAT),
        node("Concat", ["cleaned", "flags", "one_hot"], ["features"], axis=1),
        node("Gemm", ["features", "feature_weight", "feature_bias"], ["linear"]),
        node("Split", ["linear", "blocks"], [*steps, "deviations", "counts_linear", "observed", "expected_by_last"],
             axis=1),
        # The recurrent network, unrolled over the fixed horizon: h_t = tanh(x_t W_xh + b_h + h_{t-1} W_hh), every
        # member at once (onnxruntime's own RNN node is four times slower than this at large batches).
        node("Gemm", [steps[0], "W_xh", "b_h"], ["drive_0"]),
        node("Tanh", ["drive_0"], [states[0]]),
        *[n for t in range(1, T) for n in (node("Gemm", [steps[t], "W_xh", "b_h"], [f"drive_{t}"]),
                                            node("Gemm", [states[t - 1], "W_hh", f"drive_{t}"], [f"pre_{t}"]),
                                            node("Tanh", [f"pre_{t}"], [states[t]]))],
        # The last observed semester, 1-based (0: none), picks the state and the expected grade of its step;
        # positions 0 and S (nothing to predict) repeat a neighbour, and by_last makes their outputs NaN.
        node("ArgMax", ["observed"], ["last"], axis=1, keepdims=1),
        node("Concat", [states[0], *states, states[-1]], ["every_step"], axis=1),
        node("Reshape", ["every_step", "by_step"], ["states_by_step"]),
        node("GatherND", ["states_by_step", "last"], ["state"], batch_dims=1),
        # The prior: its level (_level_exponent), and the expected grade and factors of the last observed step.
        node("Relu", ["counts_linear"], ["counts"]),
        node("Reshape", ["counts", "count_rows"], ["counts_by_step"]),
        node("MatMul", ["counts_by_step", "exponent"], ["log_weights"]),
        node("Exp", ["log_weights"], ["level_weights"]),
        node("Reshape", ["deviations", "deviation_rows"], ["deviation_by_step"]),
        node("Mul", ["level_weights", "deviation_by_step"], ["weighted"]),
        node("ReduceSum", ["weighted", "step_axis"], ["level"], keepdims=0),
        node("GatherElements", ["expected_by_last", "last"], ["expected"], axis=1),
        node("GatherND", ["by_last", "last"], ["factors"]),
        # The output layers: softplus gaps, the factors, then (low, median, high) as rows of [3, batch].
        node("Gemm", ["state", "gap_weight", "gap_bias"], ["gap_inputs"]),
        node("Softplus", ["gap_inputs"], ["gaps"]),
        node("Concat", ["state", "level", "gaps", "expected"], ["terms"], axis=1),
        node("Mul", ["terms", "factors"], ["scaled"]),
        node("Gemm", ["output_weight", "scaled", "output_bias"], ["quantiles"], transA=1, transB=1),
        node("Clip", ["quantiles", "scale_low", "scale_high"], ["clipped"]),
        node("Reshape", ["clipped", "flat"], ["flat_quantiles"]),
        node("Split", ["flat_quantiles"], ["low", "prediction", "high"], axis=0, num_outputs=3),
    ]
    inputs = [helper.make_tensor_value_info("grades", TensorProto.FLOAT, ["batch", S]),
              helper.make_tensor_value_info("college", TensorProto.INT64, ["batch"])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch"])
               for name in ("prediction", "low", "high")]
    graph = helper.make_graph(nodes, "next_semester_forecast", inputs, outputs, initializers)
    # The IR version torch's exporter writes (onnx's newest is beyond what onnxruntime-web 1.30 reads).
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)
