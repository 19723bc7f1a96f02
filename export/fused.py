"""The exported form of a tanh-recurrent forecaster: the same computation in few, wide steps.

onnxruntime spends its time per node, not per multiply, on a model this small. Traced as
written, a two-member elman ensemble is about 170 nodes: per member, per step, a small
matmul, an add, a gather... Here the trained weights are folded, once, into a handful of
matrices, so that the whole ensemble runs as:

    features = [grades (NaN -> the mean), missing flags, college one-hot]
    Gemm       every step's recurrent drive and every step's linear autoregression,
               normalisation, position and college embedding included (one product)
    per step   h_t = tanh(drive_t + h_{t-1} W): one Gemm and one Tanh, both members at
               once (their hidden states side by side, a block-diagonal W)
    select     the state and linear term of each student's last observed semester
    Gemm       the output layers of all members; softplus on the interval gaps
    Gemm       ensemble mean and de-normalisation into (low, median, high), clipped to 0-10

It applies to the `elman` and `rnn` cells with one layer (the same tanh recurrence);
`TorchRecurrent`'s GRU and LSTM export as native ONNX nodes instead. `fused_forecaster`
returns None for those, and tests compare this module's outputs with
GradeForecaster.forward for every input class.
"""
from __future__ import annotations

import torch
from torch import nn

from cgpa_rnn.model.network import GAP_OFFSET, ElmanCell, GradeForecaster
from cgpa_rnn.values import GRADE_MAX, GRADE_MIN

FUSABLE_CELLS = ("elman", "rnn")


def _recurrent_weights(member) -> tuple[torch.Tensor, ...]:
    """A member's input weights [H, inputs] and bias [H], hidden weights [H, H], output weights [3, H]
    and bias [3], in float64 for folding."""
    recurrent = member.recurrent
    if isinstance(recurrent, ElmanCell):
        weights = (recurrent.input_dense.weight, recurrent.input_dense.bias, recurrent.hidden_dense.weight)
    else:
        core = recurrent.core
        weights = (core.weight_ih_l0, core.bias_ih_l0 + core.bias_hh_l0, core.weight_hh_l0)
    weights += (recurrent.output_dense.weight, recurrent.output_dense.bias)
    return tuple(w.detach().double() for w in weights)


class FusedForecaster(nn.Module):
    """GradeForecaster.forward for a one-layer tanh cell, with every member's weights folded."""

    def __init__(self, model: GradeForecaster):
        super().__init__()
        S, E = model.semesters, len(model.members)
        H = model.config.hidden
        V = model.college_codes.numel()
        mean, std = float(model.grade_mean), float(model.grade_std)
        self.semesters, self.hidden, self.members = S, E * H, E
        self.register_buffer("college_codes", model.college_codes.clone())
        self.register_buffer("grade_mean", model.grade_mean.clone())

        # Features: S grades (NaN replaced by the mean, so their normalised value is 0),
        # S missing flags, V college one-hot columns (all zero: the unknown slot).
        # The first product gives every step's drive [S * E*H], then every step's linear terms [S * E].
        drives = S * E * H
        weight = torch.zeros(2 * S + V, drives + S * E, dtype=torch.float64)
        bias = torch.zeros(drives + S * E, dtype=torch.float64)
        hidden_weight = torch.zeros(E * H, E * H, dtype=torch.float64)
        head_weight = torch.zeros(E * H + E, 3 * E, dtype=torch.float64)
        head_bias = torch.zeros(3 * E, dtype=torch.float64)
        interval = torch.zeros(3 * E, 3, dtype=torch.float64)
        for e, member in enumerate(model.members):
            w_in, b_in, w_hh, w_out, b_out = _recurrent_weights(member)
            hs = slice(e * H, (e + 1) * H)
            colleges = member.college_embedding.weight.detach().double() @ w_in[:, 2 + S:].T  # [V+1, H]
            ar = torch.cat([member.ar_grade * member.causal, member.ar_missing * member.causal], 1).detach().double()
            ar_college = member.ar_college.weight.detach().double()  # [V+1, S]
            if not member.linear_skip:
                ar, ar_college = torch.zeros_like(ar), torch.zeros_like(ar_college)
            for t in range(S):
                drive = slice(t * E * H + e * H, t * E * H + (e + 1) * H)
                linear = drives + t * E + e
                # The grade is normalised inside: weight/std on the raw grade, -weight*mean/std in the bias.
                weight[t, drive] = w_in[:, 0] / std
                weight[S + t, drive] = w_in[:, 1]
                weight[2 * S:, drive] = colleges[1:] - colleges[0]
                bias[drive] = b_in + w_in[:, 2 + t] + colleges[0] - w_in[:, 0] * mean / std
                weight[:S, linear] = ar[t, :S] / std
                weight[S:2 * S, linear] = ar[t, S:]
                weight[2 * S:, linear] = ar_college[1:, t] - ar_college[0, t]
                bias[linear] = ar_college[0, t] - (ar[t, :S] * mean / std).sum()
            hidden_weight[hs, hs] = w_hh.T
            # Heads per member: median (linear term + correction), then the two gaps before softplus.
            head_weight[hs, e], head_weight[E * H + e, e], head_bias[e] = w_out[0], 1.0, b_out[0]
            head_weight[hs, E + e], head_bias[E + e] = w_out[1], b_out[1] + GAP_OFFSET
            head_weight[hs, 2 * E + e], head_bias[2 * E + e] = w_out[2], b_out[2] + GAP_OFFSET
            scale = float(member.interval_scale)
            # Ensemble mean and de-normalisation: low, median, high from (median_e, softplus gaps).
            interval[e, :] = std / E
            interval[E + e, 0] = -scale * std / E
            interval[2 * E + e, 2] = scale * std / E
        # A student's last observed semester t: observed at t and at no later step.
        later = torch.tril(torch.ones(S, S), diagonal=-1)  # later[j, t] = 1 for j > t
        predictable = torch.ones(S)
        predictable[-1] = 0.0  # the horizon's last semester has no next one
        # Stored for the feature-major layout below: weights [out, in], biases [out, 1].
        for name, value in (("input_weight", weight.T), ("input_bias", bias[:, None]),
                            ("hidden_weight", hidden_weight.T), ("head_weight", head_weight.T),
                            ("head_bias", head_bias[:, None]), ("interval", interval.T), ("later", later.T),
                            ("predictable", predictable[None, :]), ("nan", torch.tensor(float("nan")))):
            self.register_buffer(name, value.float().contiguous())

    def forward(self, grades: torch.Tensor, college: torch.Tensor):
        # Feature-major: one column per student. Every split below is then a contiguous block
        # and the choice of step a sum over the outermost axis, which is what makes batches fast.
        batch = grades.shape[0]
        missing = torch.isnan(grades.T)  # [S, B]
        flags = missing.float()
        cleaned = torch.where(missing, self.grade_mean, grades.T)
        college_one_hot = (self.college_codes.unsqueeze(1) == college.unsqueeze(0)).float()  # [V, B]
        features = torch.cat([cleaned, flags, college_one_hot], dim=0)
        *drives, linear = torch.addmm(self.input_bias, self.input_weight, features).split(
            [self.hidden] * self.semesters + [self.semesters * self.members], dim=0)
        h = torch.tanh(drives[0])
        states = [h]
        for drive in drives[1:]:
            h = torch.tanh(torch.addmm(drive, self.hidden_weight, h))
            states.append(h)
        per_step = torch.cat([torch.cat(states, dim=0).reshape(self.semesters, self.hidden, batch),
                              linear.reshape(self.semesters, self.members, batch)], dim=1)
        observed = 1.0 - flags
        last = torch.where(self.later @ observed == 0, observed, 0.0)  # one-hot of the last observed semester
        heads = torch.addmm(self.head_bias, self.head_weight, (per_step * last.unsqueeze(1)).sum(0))
        median, gaps = heads.split([self.members, 2 * self.members], dim=0)
        # ONNX Softplus is log(1 + exp(x)) everywhere; torch switches to x above 20, where the two agree in fp32.
        quantiles = self.interval @ torch.cat([median, torch.log1p(torch.exp(gaps))], dim=0) + self.grade_mean
        quantiles = quantiles.clamp(GRADE_MIN, GRADE_MAX)
        quantiles = torch.where(self.predictable @ last > 0.5, quantiles, self.nan)
        return quantiles[1], quantiles[0], quantiles[2]


def fused_forecaster(model: GradeForecaster) -> FusedForecaster | None:
    """The fused form where the cell allows it, else None (export the model as it is)."""
    if model.config.cell in FUSABLE_CELLS and model.config.layers == 1:
        return FusedForecaster(model).eval()
    return None
