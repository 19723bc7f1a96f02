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
  + correction: the recurrent network's output y_t = h_t W_hy + b_y from its hidden state
                after semester t.

Where the training students give no clear evidence against repeating the last grade, the
baseline is persistence itself and the median is held there (hold_median_at_prior): the
network then learns only the interval.

The prior is the damped-deviation baseline (model/baselines.py), computed the same way and
started from that baseline's fit on the training students, so the network starts where
the baseline is and the recurrent part only learns what it misses (a full linear skip,
as this model had before, costs more parameters and did worse). The quantiles of
model.config.QUANTILES (10%, 50%, 90%) are predicted; the median is the point
prediction and the outer two make the 80% interval, scaled per predicted semester
after training (model/fitting.py calibrates it). `explain` returns the parts of a
prediction: the prior's terms, the network's correction and the hidden states.

Every parameter has the ensemble member as its first dimension ([E, ...]), so all members
train as one model (model/trainer.py relies on this: per-member clipping, decay, averaging).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from cgpa_rnn.data.sequences import predictable
from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.model.config import QUANTILES, ModelConfig

# Per step the recurrent network outputs a median correction and one gap per outer quantile.
HEADS = len(QUANTILES)
# The gaps are softplus(output + offset): at initialisation (output near 0) the interval starts
# about 1.3 standard deviations of grades wide on each side instead of 0.7, closer to
# the spread it has to learn, so early training is not spent widening it.
GAP_OFFSET = 1.0
STEP_FEATURES = 3  # per step: normalised grade, deviation from the college mean, missing flag (+ position)
TORCH_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def _uniform(*shape: int, bound: float) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))  # PyTorch's own RNN initialisation


def output_layer(members: int, hidden: int) -> tuple[nn.Parameter, nn.Parameter]:
    """W_hy [E, H, HEADS] and b_y [E, HEADS]. The median's column starts at zero, so the correction
    starts at zero and the network starts as the prior."""
    W_hy = _uniform(members, hidden, HEADS, bound=1 / math.sqrt(hidden))
    with torch.no_grad():
        W_hy[..., 0] = 0.0
    return W_hy, nn.Parameter(torch.zeros(members, HEADS))


class ElmanCell(nn.Module):
    """The vanilla recurrent network written out, one weight set per member:

        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h),   h_0 = 0
        y_t = h_t W_hy + b_y

    W_xh [E, inputs, H] input to hidden, W_hh [E, H, H] hidden to hidden, b_h [E, H],
    W_hy [E, H, HEADS] hidden to output, b_y [E, HEADS]."""

    def __init__(self, members: int, inputs: int, hidden: int):
        super().__init__()
        bound = 1 / math.sqrt(hidden)
        self.W_xh = _uniform(members, inputs, hidden, bound=bound)
        self.b_h = _uniform(members, hidden, bound=bound)
        self.W_hh = _uniform(members, hidden, hidden, bound=bound)
        self.W_hy, self.b_y = output_layer(members, hidden)

    def step(self, x_t: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step, every member: x_t [B, inputs], h_{t-1} [E, B, H] (None: h_0 = 0) -> (h_t, h_t)."""
        if h is None:
            h = x_t.new_zeros(self.W_hh.shape[0], x_t.shape[0], self.W_hh.shape[1])
        h = torch.tanh(x_t @ self.W_xh + h @ self.W_hh + self.b_h[:, None])  # [E, B, H]
        return h, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, inputs] -> hidden states [E, B, T, H]
        states, h = [], None
        for t in range(x.shape[1]):  # export/fused.py exports the same sums unrolled, the members side by side
            h, _ = self.step(x[:, t], h)
            states.append(h)
        return torch.stack(states, dim=2)

    def output(self, states: torch.Tensor) -> torch.Tensor:  # [E, B, T, H] -> [E, B, T, HEADS]
        every_step = torch.bmm(states.flatten(1, 2), self.W_hy)  # all steps in one product per member
        return every_step.unflatten(1, states.shape[1:3]) + self.b_y[:, None, None]


class TorchCell(nn.Module):
    """nn.RNN / nn.GRU / nn.LSTM as torch gives them, one weight set per member.

    `template` is one module of torch's own class; each member's weights are stored stacked
    under torch's own names with the member first (weight_ih_l0 [E, gates*H, inputs],
    weight_hh_l0 [E, gates*H, H], bias_ih_l0, bias_hh_l0 [E, gates*H], then _l1, ...), each
    member initialised as torch initialises the module. Each member runs through the template
    with its own weights (torch.func.functional_call), so the template keeps torch's code but
    none of its own weights. Dropout between stacked layers is the template's. The output
    layer is the Elman cell's: y_t = h_t W_hy + b_y."""

    def __init__(self, cell: str, members: int, inputs: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.template = TORCH_CELLS[cell](inputs, hidden, num_layers=layers, batch_first=True,
                                          dropout=dropout if layers > 1 else 0.0)
        self.names = [name for name, _ in self.template.named_parameters()]
        draws = []
        for _ in range(members):
            self.template.reset_parameters()  # torch's own initialisation, once per member
            draws.append([parameter.detach().clone() for parameter in self.template.parameters()])
        for name, values in zip(self.names, zip(*draws)):
            delattr(self.template, name)  # forward passes every weight: the template holds none of its own
            self.register_parameter(name, nn.Parameter(torch.stack(values)))
        self.W_hy, self.b_y = output_layer(members, hidden)

    def _members(self, x: torch.Tensor, states: list | None):
        """Each member's (outputs, recurrent state) for x [B, T, inputs], from its own states (None: zeros)."""
        stacked = [getattr(self, name).unbind(0) for name in self.names]
        for e, weights in enumerate(zip(*stacked)):  # member by member (vmap has no batching rule for these cells)
            given = (x,) if states is None else (x, states[e])
            yield functional_call(self.template, dict(zip(self.names, weights)), given)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, inputs] -> hidden states [E, B, T, H]
        # For the LSTM its h; with several layers the last layer's.
        return torch.stack([outputs for outputs, _ in self._members(x, None)])

    def step(self, x_t: torch.Tensor, states: list | None = None) -> tuple[torch.Tensor, list]:
        """One step, every member: x_t [B, inputs] -> (h_t [E, B, H], the members' recurrent states)."""
        outputs, states = zip(*self._members(x_t[:, None], states))
        return torch.stack(outputs)[:, :, 0], list(states)

    output = ElmanCell.output  # y_t = h_t W_hy + b_y, the same output layer


def last_observed(observed: torch.Tensor) -> torch.Tensor:
    """[B, S] observed flags -> [B]: each student's last observed semester, -1 for none. The torch
    form of cgpa_rnn.rules.last_observed (tests/test_model.py ties the two), inside the graph."""
    steps = torch.arange(1, observed.shape[1] + 1, device=observed.device)
    return (observed.long() * steps).amax(dim=1) - 1


def smoothed_level(deviation: torch.Tensor, observed: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Deviations [B, S] (observed [B, S]), smoothing [E] -> the level after each semester [E, B, S].

    Exponential smoothing that starts at the first observed semester and skips missing ones,
    level_t = level_{t-1} + alpha (d_t - level_{t-1}): the damped-deviation baseline's, exactly."""
    level = torch.zeros(alpha.shape[0], deviation.shape[0], dtype=deviation.dtype)
    seen = torch.zeros(deviation.shape[0], dtype=torch.bool)
    levels = []
    for t in range(deviation.shape[1]):
        level, seen = level_step(level, seen, deviation[:, t], observed[:, t], alpha)
        levels.append(level)
    return torch.stack(levels, dim=-1)


def level_step(level: torch.Tensor, seen: torch.Tensor, deviation_t: torch.Tensor, observed_t: torch.Tensor,
               alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One semester of smoothed_level: level [E, B] and seen [B] (a semester observed before) after it."""
    gain = torch.where(seen, alpha[:, None], torch.ones_like(alpha)[:, None]) * observed_t
    return level + gain * (deviation_t - level), seen | observed_t


def at_step(values: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """values [B, T, ...], step [B] -> [B, ...]: each student's value at their own step."""
    index = step.view(-1, 1, *[1] * (values.dim() - 2)).expand(-1, 1, *values.shape[2:])
    return torch.gather(values, 1, index).squeeze(1)


class Parts(NamedTuple):
    """Per member, in normalised units, of every step t (predicting semester t+1 from 0..t, 0-based)."""

    group: torch.Tensor  # [E, B, T] the group's expected grade: college mean of t+1 + shift + offset
    level: torch.Tensor  # [E, B, T] the student's smoothed deviation from the group's means after t
    damping: torch.Tensor  # [E, 1, T] phi_t: the share of that deviation carried over
    states: torch.Tensor  # [E, B, T, H] the recurrent network's hidden state after t
    outputs: torch.Tensor  # [E, B, T, HEADS] its output: median correction, then the two gaps

    @property
    def prior(self) -> torch.Tensor:  # [E, B, T]
        return self.group + self.damping * self.level


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
        # The trajectory's interval factor per horizon (1, 2, ... semesters ahead), and the final CGPA's per
        # side (low, high) and number of unknown semesters, calibrated on held-out students (model/trajectory.py).
        self.register_buffer("horizon_scale", torch.ones(S - 1))
        self.register_buffer("final_scale", torch.ones(2, S - 1))
        self.register_buffer("position", torch.eye(S), persistent=False)
        # The prior starts as the damped-deviation baseline fitted on the training students (alpha, phi_t);
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
            self.recurrent = TorchCell(config.cell, E, inputs, H, config.layers, config.dropout)

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
        """Train the interval alone: every member's offsets of the prior and its median correction
        (W_hy[..., 0], b_y[..., 0]) are zero and their gradients zeroed, so the median is the prior's
        throughout training and the interval is learnt around it (AdamW leaves a parameter with zero
        gradients where it is, and decays a zero to zero)."""
        median_output = torch.tensor([0.0] + [1.0] * (HEADS - 1))
        with torch.no_grad():
            for offset in (self.smoothing, self.damping, self.college_offset):
                offset.zero_()
                offset.register_hook(torch.zeros_like)
            for output in (self.recurrent.W_hy, self.recurrent.b_y):
                output[..., 0] = 0.0
                output.register_hook(lambda gradient: gradient * median_output)

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

    def parts(self, grades: torch.Tensor, college: torch.Tensor,
              hide_college: torch.Tensor | None = None) -> Parts:
        """The prior's terms, the hidden states and the network's outputs of every step (Parts)."""
        steps, _, deviation, index = self.inputs(grades, college, hide_college)
        states = self.recurrent(steps[:, :-1])  # the last semester predicts nothing
        alpha = torch.sigmoid(self.prior_smoothing + self.smoothing)
        level = smoothed_level(deviation[:, :-1], ~torch.isnan(grades[:, :-1]), alpha)
        group = self.college_mean[index][:, 1:] + self.prior_shift[index] + self.college_offset[:, index]
        return Parts(group, level, (self.prior_damping + self.damping)[:, None], states, self.recurrent.output(states))

    def quantiles(self, parts: Parts, interval_scale: torch.Tensor | None = None) -> torch.Tensor:
        """Per member [E, B, S-1, HEADS], normalised: median = prior + correction, and the interval
        around it (softplus gaps, scaled per predicted semester; `interval_scale` the steps' own when
        `parts` holds fewer steps)."""
        scale = self.interval_scale if interval_scale is None else interval_scale
        median = parts.prior + parts.outputs[..., 0]
        low = median - scale * F.softplus(parts.outputs[..., 1] + GAP_OFFSET)
        high = median + scale * F.softplus(parts.outputs[..., 2] + GAP_OFFSET)
        return torch.stack([low, median, high], dim=-1)

    def member_quantiles(self, grades: torch.Tensor, college: torch.Tensor,
                         hide_college: torch.Tensor | None = None) -> torch.Tensor:
        """[E, B, S-1, HEADS] in normalised units; step t predicts semester t+1 (0-based) from 0..t."""
        return self.quantiles(self.parts(grades, college, hide_college))

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

    def in_points(self, quantiles: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Members' quantiles [E, B, S-1, HEADS] -> the ensemble's [B, S-1, HEADS] in grade points, on the
        cohort's grade scale (an interval reaching past its top would promise a grade nobody can get).
        `weights` [E, B]: each student's own mix of members (calibration's held-out ensembles)."""
        if weights is None:
            combined = quantiles.mean(0)
        else:
            combined = (quantiles * weights[..., None, None]).sum(0) / weights.sum(0)[:, None, None]
        return (combined * self.grade_std + self.grade_mean).clamp(self.scale.low, self.scale.high)

    def all_steps(self, grades: torch.Tensor, college: torch.Tensor) -> torch.Tensor:
        """The ensemble's quantiles in grade points for every step: [B, S-1, HEADS], step t predicts
        semester t+2 (1-based) from semesters 1..t+1."""
        return self.in_points(self.member_quantiles(grades, college))

    def next_step(self, grades: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B] the step that predicts the semester after each student's last observed one, and [B]
        whether there is one: not when no grade is observed or the horizon's last semester is."""
        last = last_observed(~torch.isnan(grades))
        return last.clamp(min=0, max=self.semesters - 2), (last >= 0) & (last < self.semesters - 1)

    def forward(self, grades: torch.Tensor, college: torch.Tensor):
        """Prediction, low, high [B] for the semester after each student's last observed one; NaN
        where there is nothing to predict (next_step)."""
        step, valid = self.next_step(grades)
        quantiles = at_step(self.all_steps(grades, college), step)
        quantiles = torch.where(valid.view(-1, 1), quantiles, torch.full_like(quantiles, float("nan")))
        return quantiles[:, 1], quantiles[:, 0], quantiles[:, 2]

    def explain(self, grades: torch.Tensor, college: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parts of forward()'s prediction, per student [B], in grade points (the ensemble's mean):

        prediction  forward()[0]
        group_mean  the group's expected grade of the predicted semester, as the prior sees it
        deviation   the student's smoothed deviation from the group's means after the last observed
                    semester (points above or below the group)
        damping     phi of the predicted step: the share of that deviation carried over
        prior       group_mean + the damped deviation (mean over members of phi x level)
        correction  prediction - prior: what the network adds (its median output, unless the
                    scale's clamp cut the prediction); prior + correction == prediction to float rounding
        hidden      [B, S-1, E, H] the hidden state after each of the first S-1 semesters (index t has
                    read semesters 1..t+1; the LSTM's h; with several layers the last layer's)

        NaN where forward() is NaN, in every output (hidden included)."""
        step, valid = self.next_step(grades)
        parts = self.parts(grades, college)
        std = self.grade_std

        def picked(per_step: torch.Tensor) -> torch.Tensor:  # [B, S-1, ...] -> [B, ...], NaN where nothing
            chosen = at_step(per_step, step)
            return torch.where(valid.view(-1, *[1] * (chosen.dim() - 1)), chosen, torch.full_like(chosen, float("nan")))

        prediction = picked(self.in_points(self.quantiles(parts))[..., 1])
        prior = picked(parts.prior.mean(0) * std + self.grade_mean)
        return {"prediction": prediction,
                "group_mean": picked(parts.group.mean(0) * std + self.grade_mean),
                "deviation": picked(parts.level.mean(0) * std),
                "damping": picked(parts.damping.mean(0).expand(grades.shape[0], -1)),
                "prior": prior,
                "correction": prediction - prior,
                "hidden": torch.where(valid.view(-1, 1, 1, 1), parts.states.permute(1, 2, 0, 3),
                                      torch.full_like(parts.states.permute(1, 2, 0, 3), float("nan")))}
