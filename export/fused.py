"""The exported form of a tanh-recurrent forecaster: the same computation in few, wide steps.

onnxruntime spends its time per node, not per multiply, on a model this small. Traced as
written, the ensemble is a few hundred small nodes. Here the trained weights are folded,
once, into a handful of matrices, so that the whole ensemble runs as:

    features = [grades (NaN -> the mean), missing flags, college one-hot]
    Gemm       every step's recurrent drive, every step's deviation from the college mean and
               every step's prior base (college mean + offset), normalisation, position and
               college lookup included (one product)
    per step   h_t = tanh(drive_t + h_{t-1} W): one Gemm and one Tanh, all members at once
               (their hidden states side by side, a block-diagonal W); and the prior's smoothed
               level, level += gain_t (deviation_t - level), for all members at once
    select     the state, prior base and damped level of each student's last observed semester
    Gemm       the output layers of all members, plus phi_t x level; softplus on the interval gaps,
               scaled per semester
    Gemm       ensemble mean and de-normalisation into (low, median, high), clipped to the scale

It applies to the `elman` and `rnn` cells with one layer (the same tanh recurrence);
the GRU and LSTM (model.network.TorchCell) export as native ONNX nodes instead. `fused_forecaster`
returns None for those, and tests compare this module's outputs with
GradeForecaster.forward for every input class.
"""
from __future__ import annotations

import torch
from torch import nn

from cgpa_rnn.model.network import GAP_OFFSET, ElmanCell, GradeForecaster

FUSABLE_CELLS = ("elman", "rnn")


def _recurrent_weights(model: GradeForecaster) -> tuple[torch.Tensor, ...]:
    """Per member: W_xh [E, inputs, H], b_h [E, H], W_hh [E, H, H] (h @ W), float64; nn.RNN's weights
    are stored the other way round ([E, H, inputs]) and its bias in two halves."""
    recurrent = model.recurrent
    if isinstance(recurrent, ElmanCell):
        weights = (recurrent.W_xh, recurrent.b_h, recurrent.W_hh)
    else:
        weights = (recurrent.weight_ih_l0.transpose(1, 2), recurrent.bias_ih_l0 + recurrent.bias_hh_l0,
                   recurrent.weight_hh_l0.transpose(1, 2))
    return tuple(w.detach().double() for w in weights)


class FusedForecaster(nn.Module):
    """GradeForecaster.forward for a one-layer tanh cell, with every member's weights folded."""

    def __init__(self, model: GradeForecaster):
        super().__init__()
        S, E, H = model.semesters, model.members, model.config.hidden
        T = S - 1  # steps that predict something
        V = model.college_codes.numel()
        mean, std = float(model.grade_mean), float(model.grade_std)
        self.semesters, self.hidden, self.members, self.grade_scale = S, E * H, E, model.scale
        self.register_buffer("college_codes", model.college_codes.clone())
        self.register_buffer("grade_mean", model.grade_mean.clone())
        w_in, b_in, w_hh = _recurrent_weights(model)
        college_mean = model.college_mean.detach().double()  # [V+1, S], normalised
        offset = model.college_offset.detach().double()  # [E, V+1, T]
        shift = model.prior_shift.detach().double()  # [V+1, T]

        # Features: S grades (NaN replaced by the mean, so their normalised value is 0),
        # S missing flags, V college one-hot columns (all zero: the unknown slot 0).
        # Output rows: T steps of drives [E*H each], then T deviations, then T x E prior bases.
        drives = T * E * H
        rows = drives + T + T * E
        weight = torch.zeros(2 * S + V, rows, dtype=torch.float64)
        bias = torch.zeros(rows, dtype=torch.float64)

        def college_term(column: slice | int, table: torch.Tensor) -> None:
            """Add table[index] (a [V+1] column: row 0 unknown) to output `column`, linear in the one-hot."""
            weight[2 * S:, column] += table[1:] - table[0]
            bias[column] += table[0]

        for t in range(T):
            deviation = drives + t
            weight[t, deviation] = 1 / std
            bias[deviation] = -mean / std
            college_term(deviation, -college_mean[:, t])
            for e in range(E):
                drive = slice(t * E * H + e * H, t * E * H + (e + 1) * H)
                # Step input [x_t, deviation_t, missing_t, position one-hot]: x_t = (grade - mean) / std.
                weight[t, drive] = (w_in[e, 0] + w_in[e, 1]) / std
                weight[S + t, drive] = w_in[e, 2]
                bias[drive] = b_in[e] + w_in[e, 3 + t] - (w_in[e, 0] + w_in[e, 1]) * mean / std
                college_term(drive, -torch.outer(college_mean[:, t], w_in[e, 1]))  # deviation_t's college mean
                college_term(drives + T + t * E + e, college_mean[:, t + 1] + offset[e, :, t] + shift[:, t])
        hidden_weight = torch.block_diag(*w_hh)  # [E*H, E*H], h @ W

        alpha = torch.sigmoid(model.prior_smoothing + model.smoothing).detach().double()  # [E]
        damping = (model.prior_damping + model.damping).detach().double()  # [E, T]
        # Heads per member: median (state, prior base, damped level), then the two gaps before softplus.
        head = model.recurrent.W_hy.detach().double()  # [E, H, 3]
        head_bias = model.recurrent.b_y.detach().double()  # [E, 3]
        head_weight = torch.zeros(E * H + E, 3 * E, dtype=torch.float64)
        head_offset = torch.zeros(3 * E, dtype=torch.float64)
        interval = torch.zeros(3 * E, 3, dtype=torch.float64)
        for e in range(E):
            hs = slice(e * H, (e + 1) * H)
            head_weight[hs, e], head_weight[E * H + e, e] = head[e, :, 0], 1.0
            head_offset[e] = head_bias[e, 0]
            head_weight[hs, E + e], head_offset[E + e] = head[e, :, 1], head_bias[e, 1] + GAP_OFFSET
            head_weight[hs, 2 * E + e], head_offset[2 * E + e] = head[e, :, 2], head_bias[e, 2] + GAP_OFFSET
            # Ensemble mean and de-normalisation: low, median, high from (median_e, scaled softplus gaps).
            interval[e, :] = std / E
            interval[E + e, 0] = -std / E
            interval[2 * E + e, 2] = std / E
        # A student's last observed semester t: observed at t and at no later step.
        later = torch.tril(torch.ones(S, S), diagonal=-1)  # later[j, t] = 1 for j > t
        earlier = torch.triu(torch.ones(T, T), diagonal=1)  # earlier[s, t] = 1 for s < t
        # Stored for the feature-major layout below: weights [out, in], biases [out, 1].
        for name, value in (("input_weight", weight.T), ("input_bias", bias[:, None]),
                            ("hidden_weight", hidden_weight.T), ("head_weight", head_weight.T),
                            ("head_bias", head_offset[:, None]), ("interval", interval.T), ("later", later.T),
                            ("earlier", earlier.T), ("alpha", alpha[None, :, None]), ("damping", damping),
                            ("scale", model.interval_scale[None, :].double()),
                            ("nan", torch.tensor(float("nan")))):
            self.register_buffer(name, value.float().contiguous())

    def forward(self, grades: torch.Tensor, college: torch.Tensor):
        # Feature-major: one column per student. Every split below is then a contiguous block
        # and the choice of step a sum over the outermost axis, which is what makes batches fast.
        T, E = self.semesters - 1, self.members
        batch = grades.shape[0]
        missing = torch.isnan(grades.T)  # [S, B]
        flags = missing.float()
        observed = 1.0 - flags
        cleaned = torch.where(missing, self.grade_mean, grades.T)
        college_one_hot = (self.college_codes.unsqueeze(1) == college.unsqueeze(0)).float()  # [V, B]
        features = torch.cat([cleaned, flags, college_one_hot], dim=0)
        *drives, deviation, base = torch.addmm(self.input_bias, self.input_weight, features).split(
            [self.hidden] * T + [T, T * E], dim=0)
        h = torch.tanh(drives[0])
        states = [h]
        for drive in drives[1:]:
            h = torch.tanh(torch.addmm(drive, self.hidden_weight, h))
            states.append(h)
        # The prior's smoothing gain per step: 1 at a student's first observed semester, alpha at a
        # later observed one, 0 at a missing one. The level stays put after the last observed
        # semester, so the level after the final step is the one at each student's last semester.
        seen = observed[:T]
        first = (self.earlier @ seen == 0).float() * seen  # [T, B]
        gain = first.unsqueeze(1) + (seen - first).unsqueeze(1) * self.alpha  # [T, E, B]
        level = gain[0] * deviation[0]
        for t in range(1, T):
            level = level + gain[t] * (deviation[t] - level)
        per_step = torch.cat([torch.cat(states, dim=0).reshape(T, self.hidden, batch), base.reshape(T, E, batch)],
                             dim=1)
        last = torch.where(self.later @ observed == 0, observed, 0.0)[:T]  # one-hot of the last observed step
        chosen = per_step * last.unsqueeze(1)
        # Added step by step: onnxruntime's ReduceSum over the outer axis is several times slower.
        selected = chosen[0]
        for t in range(1, T):
            selected = selected + chosen[t]
        heads = torch.addmm(self.head_bias, self.head_weight, selected)
        median, gaps = heads.split([E, 2 * E], dim=0)
        median = median + level * (self.damping @ last)  # phi of each student's last step
        # ONNX Softplus is log(1 + exp(x)) everywhere; torch switches to x above 20, where the two agree in fp32.
        gaps = torch.log1p(torch.exp(gaps)) * (self.scale @ last)
        quantiles = self.interval @ torch.cat([median, gaps], dim=0) + self.grade_mean
        quantiles = quantiles.clamp(self.grade_scale.low, self.grade_scale.high)
        # Nothing to predict: no semester observed, or the last one of the horizon already is.
        quantiles = torch.where(last.sum(0) > 0.5, quantiles, self.nan)
        return quantiles[1], quantiles[0], quantiles[2]


def fused_forecaster(model: GradeForecaster) -> FusedForecaster | None:
    """The fused form where the cell allows it, else None (export the model as it is)."""
    if model.config.cell in FUSABLE_CELLS and model.config.layers == 1:
        return FusedForecaster(model).eval()
    return None
