"""Training: AdamW on the pinball loss of all next-semester predictions at once, early stopping.

The trainer knows the model only through `Member.forward` and the loss; members of an
ensemble are trained one after another with their own seeds, each stopped early on
the same student-level validation split.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from cgpa_rnn.data.sequences import Normalisation, split_students
from cgpa_rnn.model.config import INTERVAL_LEVEL, QUANTILES, TrainConfig
from cgpa_rnn.model.network import GradeForecaster


def targets_and_mask(x: torch.Tensor, missing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step t's target is semester t+1; it counts when observed and some semester <= t is."""
    observed = 1.0 - missing
    seen_before = torch.cumsum(observed, dim=1) > 0
    target = torch.zeros_like(x)
    target[:, :-1] = x[:, 1:]
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[:, :-1] = (observed[:, 1:] > 0) & seen_before[:, :-1]
    return target, mask


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    levels = torch.tensor(QUANTILES, dtype=quantiles.dtype)
    error = target.unsqueeze(-1) - quantiles
    loss = torch.maximum(levels * error, (levels - 1) * error).sum(-1)
    return (loss * mask).sum() / mask.sum().clamp(min=1)


@dataclass
class History:
    """Per member: training and validation loss per epoch, and the epoch kept."""

    train: list[list[float]] = field(default_factory=list)
    validation: list[list[float]] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    tuning: dict[str, float] = field(default_factory=dict)  # weight decay -> validation loss
    weight_decay: float = 0.0  # the one chosen
    time_limited: int = 0  # members stopped by the time budget rather than by early stopping


def build_model(config: TrainConfig, train_grades: np.ndarray, colleges: list[int]) -> GradeForecaster:
    torch.manual_seed(config.seed)
    norm = Normalisation.fit(train_grades)
    return GradeForecaster(config.model, train_grades.shape[1], sorted(set(colleges)), norm.mean, norm.std)


Progress = bool | Callable[[float], None]  # a console bar, or a callback given the share of training done


class _ReportingBar:
    """The console bar's interface, reporting the share of epochs done to a callback (a UI)."""

    def __init__(self, total: int, report: Callable[[float], None]):
        self.total, self.done, self.report = total, 0, report

    def update(self, epochs: int = 1) -> None:
        self.done += epochs
        self.report(self.done / self.total)

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def fit(config: TrainConfig, grades: np.ndarray, college: np.ndarray, progress: Progress = True
        ) -> tuple[GradeForecaster, History]:
    """Train a forecaster on the training students' (grades, college).

    Each member holds out its own seeded validation share of these students for early
    stopping and interval calibration, so across the ensemble every training student is
    also learned from. With several weight-decay candidates, each is trained and the one
    with the lowest validation loss is kept and written into the returned model's config:
    tuning never sees students outside `grades`."""
    candidates = config.tune_weight_decay or (config.weight_decay,)
    scores, best = {}, None
    for index, weight_decay in enumerate(candidates):
        # The time budget is shared evenly, so every candidate is compared on equal terms.
        trial = replace(config, weight_decay=weight_decay, tune_weight_decay=(),
                        max_seconds=config.max_seconds / len(candidates))
        part = (lambda share, index=index: progress((index + share) / len(candidates))) if callable(progress) \
            else progress
        model, history = _fit_ensemble(trial, grades, college, part)
        scores[str(weight_decay)] = float(np.mean([curve[epoch] for curve, epoch
                                                   in zip(history.validation, history.best_epoch)]))
        if best is None or scores[str(weight_decay)] < best[0]:
            best = (scores[str(weight_decay)], model, history, weight_decay)
    _, model, history, history.weight_decay = best
    history.tuning = scores
    return model, history


def _fit_ensemble(config: TrainConfig, grades: np.ndarray, college: np.ndarray, progress: Progress):
    model = build_model(config, grades, college.tolist())
    with torch.no_grad():
        inputs = model.preprocess(torch.from_numpy(grades), torch.from_numpy(college))
    target, mask = targets_and_mask(inputs[0], inputs[1])
    history = History()
    total = config.model.ensemble * config.max_epochs
    bar = _ReportingBar(total, progress) if callable(progress) else tqdm(
        total=total, disable=not progress, leave=False, desc=f"train {config.model.cell} (weight decay "
                                                              f"{config.weight_decay:g})")
    for k, member in enumerate(model.members):
        seed = config.seed * 1000 + k
        train_rows, val_rows, _ = split_students(len(grades), seed, config.validation, 0.0)
        train_part = [t[torch.from_numpy(train_rows)] for t in (*inputs, target, mask)]
        val_part = [t[torch.from_numpy(val_rows)] for t in (*inputs, target, mask)]
        train_curve, val_curve, best_epoch, out_of_time = _fit_member(member, config, seed, train_part, val_part,
                                                                      bar, k)
        history.time_limited += out_of_time
        _calibrate_interval(member, val_part)
        history.train.append(train_curve)
        history.validation.append(val_curve)
        history.best_epoch.append(best_epoch)
    bar.close()
    model.eval()
    return model, history


def _fit_member(member, config: TrainConfig, seed: int, train, validation, bar, k: int):
    generator = torch.Generator().manual_seed(seed)
    deadline = time.monotonic() + config.max_seconds / config.model.ensemble if config.max_seconds else None
    out_of_time = False
    optimizer = torch.optim.AdamW(member.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    n = train[0].shape[0]
    batch_size = config.batch_size or n
    # Validation and the kept weights use an exponential moving average of the weights:
    # on ~150 students single full-batch steps are noisy, the average is not.
    averaged = AveragedModel(member, multi_avg_fn=get_ema_multi_avg_fn(config.weight_average), use_buffers=True)
    best, best_state, best_epoch = float("inf"), None, 0
    train_curve, val_curve = [], []
    for epoch in range(config.max_epochs):
        member.train()
        order = torch.randperm(n, generator=generator) if batch_size < n else torch.arange(n)
        epoch_loss = 0.0
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            x, missing, college, target, mask = (t[rows] for t in train)
            # Some students are shown as "college unknown", so that slot learns the average college.
            hidden = torch.rand(len(rows), generator=generator) < config.college_dropout
            loss = pinball_loss(member(x, missing, college.masked_fill(hidden, 0)), target, mask)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(member.parameters(), config.grad_clip)
            optimizer.step()
            averaged.update_parameters(member)
            epoch_loss += loss.item() * len(rows) / n
        averaged.eval()
        with torch.no_grad():
            val_loss = pinball_loss(averaged(*validation[:3]), validation[3], validation[4]).item()
        train_curve.append(epoch_loss)
        val_curve.append(val_loss)
        if val_loss < best - 1e-6:
            best, best_state, best_epoch = val_loss, copy.deepcopy(averaged.module.state_dict()), epoch
        bar.update(1)
        bar.set_postfix(member=k, train=f"{epoch_loss:.4f}", val=f"{val_loss:.4f}", refresh=False)
        out_of_time = deadline is not None and time.monotonic() > deadline
        if epoch - best_epoch >= config.patience or out_of_time:
            bar.update(config.max_epochs - epoch - 1)
            break
    member.load_state_dict(best_state)
    return train_curve, val_curve, best_epoch, out_of_time


def _calibrate_interval(member, validation) -> None:
    """Scale the interval so that it covers INTERVAL_LEVEL (80%) of the member's held-out targets.

    Quantile heads fitted on ~150 students are over-confident; this is split conformal
    calibration with a multiplicative score (how many half-widths away the target is)."""
    x, missing, college, target, mask = validation
    with torch.no_grad():
        quantiles = member(x, missing, college)[mask]
        actual = target[mask]
        below = (quantiles[:, 1] - actual) / (quantiles[:, 1] - quantiles[:, 0])
        above = (actual - quantiles[:, 1]) / (quantiles[:, 2] - quantiles[:, 1])
        score = torch.maximum(below, above)
        n = score.numel()
        level = min(1.0, np.ceil((n + 1) * INTERVAL_LEVEL) / n)
        member.interval_scale.mul_(torch.quantile(score, level).clamp(min=0.1))


def predict_all_steps(model: GradeForecaster, grades: np.ndarray, college: np.ndarray) -> np.ndarray:
    """Quantiles [N, S, len(QUANTILES)] in grade points; [:, t] predicts semester t+2 from semesters 1..t+1."""
    with torch.no_grad():
        return model.all_steps(torch.from_numpy(grades), torch.from_numpy(college)).numpy()
