"""The grade forecaster: raw grades and college codes in, next-semester grade and interval out.

Each semester is one time step. Everything between the raw inputs and the raw output
lives in this module (normalisation, missing-value handling, the college lookup), so
torch and the exported ONNX graph take the same inputs and no caller repeats it.

Per member of the ensemble the prediction for semester t+1 is

    linear autoregression on semesters 1..t (+ missing flags, + a college/semester offset)
  + a recurrent correction read from the hidden state after semester t.

The linear part can represent the ridge baseline exactly (LSTNet's autoregressive
component); the recurrent part learns what a linear model cannot. The quantiles of
model.config.QUANTILES (10%, 50%, 90%) are predicted; the median is the point
prediction and the outer two make the 80% interval.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cgpa_rnn.model.config import QUANTILES, ModelConfig
from cgpa_rnn.values import GRADE_MAX, GRADE_MIN

# Per step the recurrent part outputs a median correction and one gap per outer quantile.
HEADS = len(QUANTILES)
# The gaps are softplus(head + offset): at initialisation (head near 0) the interval starts
# about 1.3 standard deviations of grades wide on each side instead of 0.7, closer to
# the spread it has to learn, so early training is not spent widening it.
GAP_OFFSET = 1.0


class ElmanCell(nn.Module):
    """A vanilla recurrent network written out as its three weight matrices.

        h_t = tanh(input_dense(x_t) + hidden_dense(h_{t-1}))
        y_t = output_dense(h_t)
    """

    def __init__(self, inputs: int, hidden: int, outputs: int):
        super().__init__()
        self.input_dense = nn.Linear(inputs, hidden)
        self.hidden_dense = nn.Linear(hidden, hidden, bias=False)
        self.output_dense = nn.Linear(hidden, outputs)

    def states(self, x: torch.Tensor) -> torch.Tensor:  # [B, S, inputs] -> [B, S, hidden]
        batch, steps, inputs = x.shape
        # The input's share of every step in one 2-D product (a fused matmul + bias in ONNX).
        drive = self.input_dense(x.reshape(batch * steps, inputs)).reshape(batch, steps, -1)
        h = torch.tanh(drive[:, 0])
        states = [h]
        for t in range(1, steps):  # the semester count is fixed, so export unrolls this loop
            h = torch.tanh(drive[:, t] + self.hidden_dense(h))
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, S, inputs] -> [B, S, outputs]
        return self.output_dense(self.states(x))


class TorchRecurrent(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU followed by the output dense layer."""

    def __init__(self, cell: str, inputs: int, hidden: int, outputs: int, layers: int, dropout: float):
        super().__init__()
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.core = kind(inputs, hidden, num_layers=layers, batch_first=True,
                         dropout=dropout if layers > 1 else 0.0)
        self.output_dense = nn.Linear(hidden, outputs)

    def states(self, x: torch.Tensor) -> torch.Tensor:
        return self.core(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_dense(self.states(x))


class Member(nn.Module):
    """One network of the ensemble, working in normalised grade units."""

    def __init__(self, config: ModelConfig, semesters: int, colleges: int):
        super().__init__()
        self.semesters = semesters
        self.linear_skip = config.linear_skip
        self.college_embedding = nn.Embedding(colleges + 1, config.college_dim)  # slot 0: unknown
        inputs = 2 + semesters + config.college_dim  # grade, missing flag, position one-hot, college
        if config.cell == "elman":
            self.recurrent = ElmanCell(inputs, config.hidden, HEADS)
        else:
            self.recurrent = TorchRecurrent(config.cell, inputs, config.hidden, HEADS,
                                            config.layers, config.dropout)
        # Autoregressive skip: row t weighs semesters 1..t+1 to predict semester t+2.
        self.ar_grade = nn.Parameter(torch.zeros(semesters, semesters))
        self.ar_missing = nn.Parameter(torch.zeros(semesters, semesters))
        self.ar_college = nn.Embedding(colleges + 1, semesters)
        nn.init.zeros_(self.ar_college.weight)
        self.register_buffer("causal", torch.tril(torch.ones(semesters, semesters)), persistent=False)
        self.register_buffer("position", torch.eye(semesters), persistent=False)
        # Widens or narrows the interval after training, calibrated on held-out students.
        self.register_buffer("interval_scale", torch.tensor(1.0))

    def unconstrained(self, x: torch.Tensor, missing: torch.Tensor, college: torch.Tensor,
                      step: torch.Tensor | None = None) -> torch.Tensor:
        """The outputs before the quantiles are ordered. x, missing: [B, S]; college: [B]
        vocabulary index. Returns [B, S, 1 + HEADS]: the linear prediction, then the
        recurrent median correction and the two interval gaps; with `step` ([B] indices)
        only that step of each row, [B, 1 + HEADS]."""
        batch = x.shape[0]
        embedded = self.college_embedding(college)
        steps = torch.cat([x.unsqueeze(-1), missing.unsqueeze(-1),
                           self.position.unsqueeze(0).expand(batch, -1, -1),
                           embedded.unsqueeze(1).expand(-1, self.semesters, -1)], dim=-1)
        linear = (torch.cat([x, missing], dim=1) @ torch.cat([self.ar_grade * self.causal,
                                                              self.ar_missing * self.causal], dim=1).T
                  + self.ar_college(college))
        if not self.linear_skip:
            linear = torch.zeros_like(linear)
        states = self.recurrent.states(steps)
        if step is not None:  # pick the step before the output layer: less work at inference
            states = torch.gather(states, 1, step.view(-1, 1, 1).expand(-1, 1, states.shape[-1])).squeeze(1)
            linear = torch.gather(linear, 1, step.view(-1, 1)).squeeze(1)
        return torch.cat([linear.unsqueeze(-1), self.recurrent.output_dense(states)], dim=-1)

    def quantiles(self, outputs: torch.Tensor) -> torch.Tensor:
        """[..., 1 + HEADS] unconstrained -> [..., HEADS] quantiles; softplus keeps low <= median <= high."""
        median = outputs[..., 0] + outputs[..., 1]
        return torch.stack([median - self.interval_scale * F.softplus(outputs[..., 2] + GAP_OFFSET), median,
                            median + self.interval_scale * F.softplus(outputs[..., 3] + GAP_OFFSET)], dim=-1)

    def forward(self, x: torch.Tensor, missing: torch.Tensor, college: torch.Tensor) -> torch.Tensor:
        """Quantiles [B, S, HEADS] in normalised units for every step."""
        return self.quantiles(self.unconstrained(x, missing, college))


class GradeForecaster(nn.Module):
    """Ensemble of members plus the preprocessing that makes raw inputs usable."""

    def __init__(self, config: ModelConfig, semesters: int, colleges: list[int], mean: float, std: float):
        super().__init__()
        self.config = config
        self.semesters = semesters
        self.register_buffer("college_codes", torch.tensor(colleges, dtype=torch.int64))
        self.register_buffer("grade_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("grade_std", torch.tensor(std, dtype=torch.float32))
        self.members = nn.ModuleList(Member(config, semesters, len(colleges)) for _ in range(config.ensemble))

    def preprocess(self, grades: torch.Tensor, college: torch.Tensor):
        """Raw [B, S] grades with NaN and raw college codes -> normalised, missing flags, vocab index."""
        observed = ~torch.isnan(grades)
        x = torch.where(observed, (grades - self.grade_mean) / self.grade_std, torch.zeros_like(grades))
        matches = (college.unsqueeze(1) == self.college_codes.unsqueeze(0)).long()
        # Index 1..V for a known code; 0, the shared "unknown" slot, for any other.
        index = (matches * torch.arange(1, self.college_codes.numel() + 1, device=grades.device)).sum(1)
        return x, (~observed).float(), index

    def _grade_points(self, member_quantiles: list[torch.Tensor]) -> torch.Tensor:
        """The ensemble's mean quantiles, from normalised units back to grade points on the
        grade scale (an interval reaching past 10 would promise a grade nobody can get)."""
        quantiles = torch.stack(member_quantiles).mean(0) * self.grade_std + self.grade_mean
        return quantiles.clamp(GRADE_MIN, GRADE_MAX)

    def all_steps(self, grades: torch.Tensor, college: torch.Tensor) -> torch.Tensor:
        """Quantiles in grade points for every step: [B, S, HEADS], step t predicts semester t+2."""
        inputs = self.preprocess(grades, college)
        return self._grade_points([member(*inputs) for member in self.members])

    def forward(self, grades: torch.Tensor, college: torch.Tensor):
        """Prediction, low, high [B] for the semester after each student's last observed one.

        NaN where there is nothing to predict: no grade observed, or the last semester of the
        horizon already observed."""
        inputs = self.preprocess(grades, college)
        observed = ~torch.isnan(grades)
        steps = torch.arange(1, self.semesters + 1, device=grades.device)
        last = (observed.long() * steps).amax(dim=1) - 1
        valid = (last >= 0) & (last < self.semesters - 1)
        step = last.clamp(min=0)
        quantiles = self._grade_points([member.quantiles(member.unconstrained(*inputs, step=step))
                                        for member in self.members])
        quantiles = torch.where(valid.view(-1, 1), quantiles, torch.full_like(quantiles, float("nan")))
        return quantiles[:, 1], quantiles[:, 0], quantiles[:, 2]
