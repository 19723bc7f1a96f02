"""The grade forecaster: raw grades and college codes in, next-semester grade and interval out.

Each semester is one time step. Everything between the raw inputs and the raw output
lives in this module (normalisation, missing-value handling, the college lookup), so
torch and the exported ONNX graph take the same inputs and no caller repeats it.

Per member of the ensemble, the median prediction of semester t+1 is

    prior:      the college's mean of semester t+1 (from the training students, plus a learnt offset)
              + the semester's shift (fitted by absolute error)
              + phi_t x the student's exponentially smoothed deviation from their college's means
                (the smoothing alpha and the damping phi_t learnt: S parameters per member);
                with alpha = phi_t = 1 this is persistence (the last grade) plus the cohort's
                median drift
  + correction: read by a recurrent network from its hidden state after semester t.

Where the training students give no clear evidence against repeating the last grade, the
baseline is persistence itself and the median is held there (hold_median_at_prior): the
network then learns only the interval.

The prior is the damped-trend baseline (model/baselines.py), computed the same way and
started from that baseline's fit on the training students, so the network starts where
the baseline is and the recurrent part only learns what it misses (a full linear skip,
as this model had before, costs more parameters and did worse). The quantiles of
model.config.QUANTILES (10%, 50%, 90%) are predicted; the median is the point
prediction and the outer two make the 80% interval, scaled per predicted semester
after training (model/fitting.py calibrates it).

Every parameter has the ensemble member as its first dimension, so all members train
as one model with batched matrix products (model/trainer.py relies on this).
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from cgpa_rnn.data.sequences import predictable
from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.model.config import QUANTILES, ModelConfig

# Per step the recurrent part outputs a median correction and one gap per outer quantile.
HEADS = len(QUANTILES)
# The gaps are softplus(head + offset): at initialisation (head near 0) the interval starts
# about 1.3 standard deviations of grades wide on each side instead of 0.7, closer to
# the spread it has to learn, so early training is not spent widening it.
GAP_OFFSET = 1.0
GATES = {"rnn": 1, "gru": 3, "lstm": 4, "elman": 1}
STEP_FEATURES = 3  # per step: normalised grade, deviation from the college mean, missing flag (+ position)


def _uniform(*shape: int, bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))  # PyTorch's own RNN initialisation


class ElmanCell(nn.Module):
    """A vanilla recurrent network written out, one weight set per member:

        h_t = tanh(x_t W_in + b + h_{t-1} W_hh)
    """

    def __init__(self, members: int, inputs: int, hidden: int):
        super().__init__()
        bound = 1 / math.sqrt(hidden)
        self.input_weight = _uniform(members, inputs, hidden, bound=bound)
        self.input_bias = _uniform(members, hidden, bound=bound)
        self.hidden_weight = _uniform(members, hidden, hidden, bound=bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, inputs] -> [E, B, T, hidden]
        # Every step's input share in one product (a fused matmul in ONNX).
        E, (B, T, F), H = self.input_weight.shape[0], x.shape, self.input_weight.shape[2]
        weight = self.input_weight.permute(1, 0, 2).reshape(F, E * H)  # all members side by side
        drive = (x.reshape(B * T, F) @ weight).view(B, T, E, H).permute(2, 0, 1, 3) + self.input_bias[:, None, None]
        h = torch.tanh(drive[:, :, 0])
        states = [h]
        for t in range(1, x.shape[1]):  # the reference form; export/fused.py exports the same sums, members folded
            h = torch.tanh(drive[:, :, t] + torch.bmm(h, self.hidden_weight))
            states.append(h)
        return torch.stack(states, dim=2)


class TorchRecurrent(nn.Module):
    """nn.RNN / nn.GRU / nn.LSTM for the whole ensemble at once.

    The members' weights are kept stacked ([E, gates*H, ...]) and assembled into one wide
    torch module with E*H hidden units whose recurrent weights are block-diagonal: member e's
    units see only member e's units, so it is E independent networks run by one kernel
    (and exported as one native ONNX GRU/LSTM node)."""

    def __init__(self, cell: str, members: int, inputs: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        kind = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.members, self.hidden, self.gates, self.layers = members, hidden, GATES[cell], layers
        self.template = kind(inputs, members * hidden, num_layers=layers, batch_first=True,
                             dropout=dropout if layers > 1 else 0.0)
        for name, _ in list(self.template.named_parameters()):
            delattr(self.template, name)  # its weights come from the stacked parameters below
        bound = 1 / math.sqrt(hidden)
        rows = self.gates * hidden
        for layer in range(layers):
            self.register_parameter(f"weight_ih_l{layer}",
                                    _uniform(members, rows, inputs if layer == 0 else hidden, bound=bound))
            self.register_parameter(f"weight_hh_l{layer}", _uniform(members, rows, hidden, bound=bound))
            self.register_parameter(f"bias_ih_l{layer}", _uniform(members, rows, bound=bound))
            self.register_parameter(f"bias_hh_l{layer}", _uniform(members, rows, bound=bound))
        self.register_buffer("eye", torch.eye(members), persistent=False)

    def _wide(self, weight: torch.Tensor, shared_input: bool) -> torch.Tensor:
        """[E, G*H, K] -> the wide module's [G*E*H, K or E*H], gate-major as torch lays it out."""
        E, G, H = self.members, self.gates, self.hidden
        if shared_input:  # every member reads the same input features
            return weight.view(E, G, H, -1).transpose(0, 1).reshape(G * E * H, -1)
        return torch.einsum("eghk,ef->gehfk", weight.view(E, G, H, H), self.eye).reshape(G * E * H, E * H)

    def wide_weights(self) -> dict[str, torch.Tensor]:
        E, G, H = self.members, self.gates, self.hidden
        weights = {}
        for layer in range(self.layers):
            weights[f"weight_ih_l{layer}"] = self._wide(getattr(self, f"weight_ih_l{layer}"), layer == 0)
            weights[f"weight_hh_l{layer}"] = self._wide(getattr(self, f"weight_hh_l{layer}"), False)
            for kind in ("ih", "hh"):
                bias = getattr(self, f"bias_{kind}_l{layer}")
                weights[f"bias_{kind}_l{layer}"] = bias.view(E, G, H).transpose(0, 1).reshape(-1)
        return weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, inputs] -> [E, B, T, hidden]
        states = functional_call(self.template, self.wide_weights(), (x,))[0]
        return states.view(x.shape[0], x.shape[1], self.members, self.hidden).permute(2, 0, 1, 3)



def last_observed(observed: torch.Tensor) -> torch.Tensor:
    """[B, S] observed flags -> [B]: each student's last observed semester, -1 for none. The torch
    form of cgpa_rnn.rules.last_observed (tests/test_model.py ties the two), inside the graph."""
    steps = torch.arange(1, observed.shape[1] + 1, device=observed.device)
    return (observed.long() * steps).amax(dim=1) - 1

def smoothed_level(deviation: torch.Tensor, observed: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Deviations [B, S] (observed [B, S]), smoothing [E] -> the level after each semester [E, B, S].

    Exponential smoothing that starts at the first observed semester and skips missing ones,
    level_t = level_{t-1} + alpha (d_t - level_{t-1}): the damped-trend baseline's, exactly."""
    level = torch.zeros(alpha.shape[0], deviation.shape[0], dtype=deviation.dtype)
    seen = torch.zeros(deviation.shape[0], dtype=torch.bool)
    levels = []
    for t in range(deviation.shape[1]):
        gain = torch.where(seen, alpha[:, None], torch.ones_like(alpha)[:, None]) * observed[:, t]
        level = level + gain * (deviation[:, t] - level)
        seen = seen | observed[:, t]
        levels.append(level)
    return torch.stack(levels, dim=-1)


class GradeForecaster(nn.Module):
    """The ensemble plus the preprocessing that makes raw inputs usable."""

    def __init__(self, config: ModelConfig, semesters: int, colleges: list[int], mean: float, std: float,
                 college_mean: torch.Tensor | None = None, smoothing: float = 0.5,
                 damping: torch.Tensor | None = None, scale: Scale = DEFAULT_SCALE,
                 shift: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.semesters = semesters
        self.scale = scale
        E, S, V, H = config.ensemble, semesters, len(colleges), config.hidden
        self.register_buffer("college_codes", torch.tensor(colleges, dtype=torch.int64))
        self.register_buffer("grade_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("grade_std", torch.tensor(std, dtype=torch.float32))
        # The prior's expected grade per college (row 0: unknown) and semester, normalised.
        self.register_buffer("college_mean", torch.zeros(V + 1, S) if college_mean is None else college_mean.float())
        # Widens or narrows the interval of each predicted semester, calibrated on held-out students.
        self.register_buffer("interval_scale", torch.ones(S - 1))
        self.register_buffer("position", torch.eye(S), persistent=False)
        # The prior starts as the damped-trend baseline fitted on the training students (alpha, phi_t);
        # each member learns offsets from it, which weight decay pulls back towards it.
        # Clamped short of 0 and 1 for a finite logit; 1 - 1e-6 keeps persistence's level exact to 1e-6.
        self.register_buffer("prior_smoothing", torch.logit(torch.tensor(float(smoothing)).clamp(0.01, 1 - 1e-6)))
        self.register_buffer("prior_damping", torch.full((S - 1,), 0.8) if damping is None else damping.float())
        # The baseline's shift per college (row 0: unknown) and predicted semester, normalised: with alpha and
        # phi near 1 the prior is persistence plus the median drift, the forecast to beat on sticky grades.
        self.register_buffer("prior_shift", torch.zeros(V + 1, S - 1) if shift is None else shift.float())
        self.smoothing = nn.Parameter(torch.zeros(E))  # alpha = sigmoid(prior_smoothing + smoothing)
        self.damping = nn.Parameter(torch.zeros(E, S - 1))  # phi_t = prior_damping[t] + damping[:, t]
        self.college_offset = nn.Parameter(torch.zeros(E, V + 1, S - 1))
        inputs = STEP_FEATURES + S
        if config.cell == "elman":
            self.recurrent = ElmanCell(E, inputs, H)
        else:
            self.recurrent = TorchRecurrent(config.cell, E, inputs, H, config.layers, config.dropout)
        self.head_weight = _uniform(E, H, HEADS, bound=1 / math.sqrt(H))
        with torch.no_grad():
            self.head_weight[:, :, 0] = 0.0  # the correction starts at zero: the network starts as the prior
        self.head_bias = nn.Parameter(torch.zeros(E, HEADS))

    @property
    def members(self) -> int:
        return self.smoothing.shape[0]

    def keep_members(self, index: torch.Tensor) -> GradeForecaster:
        """A forecaster of only these members (every parameter's first dimension is the member)."""
        kept = GradeForecaster(replace(self.config, ensemble=len(index)), self.semesters, self.college_codes.tolist(),
                               float(self.grade_mean), float(self.grade_std), scale=self.scale)
        parameters = dict(self.named_parameters())
        kept.load_state_dict({name: value[index] if name in parameters else value
                              for name, value in self.state_dict().items()})
        return kept

    def hold_median_at_prior(self) -> None:
        """Train the interval alone: every member's offsets of the prior and its median correction are
        zero and their gradients zeroed, so the median is the prior's throughout training and the
        interval is learnt around it (AdamW leaves a parameter with zero gradients where it is)."""
        median_head = torch.tensor([0.0] + [1.0] * (HEADS - 1))
        with torch.no_grad():
            for offset in (self.smoothing, self.damping, self.college_offset):
                offset.zero_()
                offset.register_hook(torch.zeros_like)
            for head in (self.head_weight, self.head_bias):
                head[..., 0] = 0.0
                head.register_hook(lambda gradient: gradient * median_head)

    def inputs(self, grades: torch.Tensor, college: torch.Tensor, hide_college: torch.Tensor | None = None):
        """Raw [B, S] grades with NaN and raw college codes -> per-step features [B, S, 3 + S],
        normalised grades [B, S], deviations from the college means [B, S], vocabulary index [B]."""
        observed = ~torch.isnan(grades)
        x = torch.where(observed, (grades - self.grade_mean) / self.grade_std, torch.zeros_like(grades))
        matches = (college.unsqueeze(1) == self.college_codes.unsqueeze(0)).long()
        # Index 1..V for a known code; 0, the shared "unknown" slot, for any other.
        index = (matches * torch.arange(1, self.college_codes.numel() + 1, device=grades.device)).sum(1)
        if hide_college is not None:  # training shows some students as "college unknown"
            index = index.masked_fill(hide_college, 0)
        # Unmasked (a missing semester reads minus the college mean; its flag says so) to stay a
        # linear map of the inputs, which export/fused.py folds into one product.
        deviation = x - self.college_mean[index]
        missing = (~observed).float()
        position = self.position.unsqueeze(0).expand(grades.shape[0], -1, -1)
        steps = torch.cat([x.unsqueeze(-1), deviation.unsqueeze(-1), missing.unsqueeze(-1), position], dim=-1)
        return steps, x, deviation, index

    def member_quantiles(self, grades: torch.Tensor, college: torch.Tensor,
                         hide_college: torch.Tensor | None = None) -> torch.Tensor:
        """[E, B, S-1, HEADS] in normalised units; step t predicts semester t+1 (0-based) from 0..t."""
        steps, _, deviation, index = self.inputs(grades, college, hide_college)
        states = self.recurrent(steps[:, :-1])  # the last semester predicts nothing
        E, B, T, H = states.shape
        heads = torch.bmm(states.reshape(E, B * T, H), self.head_weight).view(E, B, T, HEADS) \
            + self.head_bias[:, None, None]
        alpha = torch.sigmoid(self.prior_smoothing + self.smoothing)
        level = smoothed_level(deviation[:, :-1], ~torch.isnan(grades[:, :-1]), alpha)
        prior = (self.college_mean[index][:, 1:] + self.prior_shift[index] + self.college_offset[:, index]
                 + (self.prior_damping + self.damping)[:, None] * level)
        median = prior + heads[..., 0]
        return torch.stack([median - self.interval_scale * F.softplus(heads[..., 1] + GAP_OFFSET), median,
                            median + self.interval_scale * F.softplus(heads[..., 2] + GAP_OFFSET)], dim=-1)

    def loss(self, grades: torch.Tensor, college: torch.Tensor, weight: torch.Tensor,
             hide_college: torch.Tensor | None = None) -> torch.Tensor:
        """Per member [E]: the pinball loss of every predictable next semester of the students
        `weight` [E, B] gives that member (1: learn from, 0: not its student)."""
        quantiles = self.member_quantiles(grades, college, hide_college)
        target = torch.nan_to_num((grades[:, 1:] - self.grade_mean) / self.grade_std)
        error = target.unsqueeze(0).unsqueeze(-1) - quantiles
        levels = torch.tensor(QUANTILES, dtype=quantiles.dtype)
        pinball = torch.maximum(levels * error, (levels - 1) * error).sum(-1)  # [E, B, S-1]
        counted = weight.unsqueeze(-1) * predictable(~torch.isnan(grades)).unsqueeze(0)
        return (pinball * counted).sum((1, 2)) / counted.sum((1, 2)).clamp(min=1)

    def all_steps(self, grades: torch.Tensor, college: torch.Tensor) -> torch.Tensor:
        """The ensemble's quantiles in grade points for every step: [B, S-1, HEADS], step t predicts
        semester t+2 (1-based) from semesters 1..t+1; on the cohort's grade scale (an interval
        reaching past its top would promise a grade nobody can get)."""
        quantiles = self.member_quantiles(grades, college).mean(0) * self.grade_std + self.grade_mean
        return quantiles.clamp(self.scale.low, self.scale.high)

    def forward(self, grades: torch.Tensor, college: torch.Tensor):
        """Prediction, low, high [B] for the semester after each student's last observed one.

        NaN where there is nothing to predict: no grade observed, or the last semester of the
        horizon already observed."""
        last = last_observed(~torch.isnan(grades))
        valid = (last >= 0) & (last < self.semesters - 1)
        step = last.clamp(min=0, max=self.semesters - 2)
        every = self.all_steps(grades, college)
        quantiles = torch.gather(every, 1, step.view(-1, 1, 1).expand(-1, 1, HEADS)).squeeze(1)
        quantiles = torch.where(valid.view(-1, 1), quantiles, torch.full_like(quantiles, float("nan")))
        return quantiles[:, 1], quantiles[:, 0], quantiles[:, 2]
