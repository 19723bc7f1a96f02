"""From training students to a calibrated forecaster: the model, its data, the trainer, the interval.

Each member holds out its own seeded validation share of the training students for
early stopping (so across the ensemble every training student is also learned from).
With several weight-decay candidates, every (candidate, member) pair is one member of a
single batched training; the candidate with the lowest validation loss keeps its members.
Afterwards the interval is calibrated per predicted semester on validation students, and the
trajectory's per horizon (model/trajectory.py). A big cohort is read in minibatches, and stops
early and calibrates on a fixed sample of validation students (model/batches.py).
Nothing here looks at students outside `grades`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from cgpa_rnn.data.sequences import Normalisation, predictable, split_students
from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.model.baselines import DampedDeviation
from cgpa_rnn.model.batches import Batches, Plan, chunks, held_out_sample
from cgpa_rnn.model.config import INTERVAL_LEVEL, TrainConfig
from cgpa_rnn.model.network import GradeForecaster
from cgpa_rnn.model.trainer import History, TimeBudget, Trainer
from cgpa_rnn.model.trajectory import calibrate_trajectory

Callback = Callable[[Trainer], None]


def build_model(config: TrainConfig, grades: np.ndarray, college: np.ndarray, prior: DampedDeviation,
                members: int | None = None, scale: Scale = DEFAULT_SCALE) -> GradeForecaster:
    """An untrained forecaster whose normalisation comes from these students and whose prior starts as
    `prior` (the damped deviation fitted on them: alpha, phi_t, college means, shifts)."""
    torch.manual_seed(config.seed)
    norm = Normalisation.fit(grades)
    codes = sorted(set(college.tolist()))
    means = prior.means
    table = np.stack([means.semester] + [means.table[c] for c in codes])  # row 0: a college not seen
    damping = torch.tensor([prior.phi.get(t, 0.0) for t in range(1, grades.shape[1])])
    shift = torch.tensor([[prior.shift(c, t) / norm.std for t in range(1, grades.shape[1])]
                          for c in [-1] + codes])  # row 0: a college not seen (the pooled shift)
    model_config = replace(config.model, ensemble=members or config.model.ensemble)
    return GradeForecaster(model_config, grades.shape[1], codes, norm.mean, norm.std,
                           torch.from_numpy((table - norm.mean) / norm.std), prior.alpha, damping, scale, shift)


def member_rows(config: TrainConfig, students: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N] weights: the students each member trains on, and those it validates on."""
    train = torch.zeros(config.model.ensemble, students)
    validation = torch.zeros(config.model.ensemble, students)
    for k in range(config.model.ensemble):
        learn, hold, _ = split_students(students, config.seed * 1000 + k, config.validation, 0.0)
        train[k, learn], validation[k, hold] = 1.0, 1.0
    return train, validation


def fit(config: TrainConfig, grades: np.ndarray, college: np.ndarray, callbacks: tuple[Callback, ...] = (),
        scale: Scale = DEFAULT_SCALE, prior: DampedDeviation | None = None) -> tuple[GradeForecaster, History]:
    """Train a forecaster on the training students' (grades, college) of a cohort on `scale`;
    `callbacks` run after every epoch (progress displays); config.max_seconds adds a time budget.
    `prior`: the damped deviation already fitted on these students, if the caller has it (fitting it
    is most of the work on a big cohort, and a baseline's fit on the same students is the same)."""
    candidates = config.tune_weight_decay or (config.weight_decay,)
    E, K = config.model.ensemble, len(candidates)
    prior = prior or DampedDeviation().fit(grades, college)
    model = build_model(config, grades, college, prior, members=E * K, scale=scale)
    # Where the training students give no clear evidence against repeating the last grade, the prior
    # is persistence, and what the members learnt on top of it lost to it on new students on every
    # such cohort measured (UCI maths and Portuguese, the sticky synthetic one): the median stays
    # persistence's, and the network learns only its interval.
    if prior.persistence:
        model.hold_median_at_prior()
    train_rows, validation_rows = member_rows(config, len(grades))
    grades_t, college_t = torch.from_numpy(grades), torch.from_numpy(college)
    # Member k * E + e: weight-decay candidate k, validation split e.
    train_rows, validation_rows = train_rows.repeat(K, 1), validation_rows.repeat(K, 1)
    decay = torch.tensor(candidates, dtype=torch.float32).repeat_interleave(E)
    plan = Plan.of(config, len(grades))
    batches = Batches(plan, grades_t, college_t, train_rows, config.college_dropout,
                      torch.Generator().manual_seed(config.seed))
    # Early stopping's and both calibrations' students: all, or a big cohort's fixed sample (model/batches.py).
    held = held_out_sample(plan, validation_rows, config.seed)
    held_grades, held_college, held_rows = grades_t[held], college_t[held], validation_rows[:, held]
    trainer = Trainer(config, model, batches, (held_grades, held_college, held_rows), decay)
    if config.max_seconds:
        trainer.add_callback("on_epoch_end", TimeBudget(config.max_seconds))
    for callback in callbacks:
        trainer.add_callback("on_epoch_end", callback)
    history = trainer.run()
    best = torch.tensor([history.validation[m][history.best_epoch[m]] for m in range(E * K)]).view(K, E).mean(1)
    chosen = int(best.argmin())
    kept = torch.arange(chosen * E, (chosen + 1) * E)
    model = model.keep_members(kept)
    for name in ("train", "validation", "best_epoch"):
        setattr(history, name, [getattr(history, name)[m] for m in kept.tolist()])
    history.tuning = {str(c): float(b) for c, b in zip(candidates, best)} if K > 1 else {}
    history.weight_decay = float(candidates[chosen])
    if history.time_limited:
        history.time_limited = min(history.time_limited, E)
    history.prior_only, history.persistence_evidence = prior.persistence, prior.evidence
    calibrate_intervals(model, held_grades, held_college, held_rows[kept])
    calibrate_trajectory(model, held_grades, held_college, held_rows[kept])
    model.eval()
    return model, history


@torch.no_grad()
def calibrate_intervals(model: GradeForecaster, grades: torch.Tensor, college: torch.Tensor,
                        validation_rows: torch.Tensor) -> None:
    """Scale each predicted semester's interval to cover INTERVAL_LEVEL (80%) of held-out targets.

    Calibration with a multiplicative score (how many half-widths away the target is), as in
    split conformal prediction. A student's held-out prediction is the mean of the members that did not learn
    from them, the nearest thing to the ensemble that never saw the student; students every
    member learned from are left out."""
    model.interval_scale.fill_(1.0)
    quantiles = model.member_quantiles(grades, college)  # [E, N, S-1, 3], normalised
    held_out = validation_rows.sum(0)  # members that held each student out
    use = held_out > 0
    ensemble = (quantiles * validation_rows[:, :, None, None]).sum(0)[use] / held_out[use, None, None]
    actual = torch.nan_to_num((grades[use, 1:] - model.grade_mean) / model.grade_std)
    counted = predictable(~torch.isnan(grades[use]))
    low, median, high = ensemble.unbind(-1)
    score = torch.maximum((median - actual) / (median - low), (actual - median) / (high - median))
    pooled = _conformal_quantile(score[counted])
    for t in range(score.shape[1]):
        scores = score[:, t][counted[:, t]]
        # A semester with too few held-out targets for its own quantile takes the pooled one.
        model.interval_scale[t] = _conformal_quantile(scores) if scores.numel() >= 20 else pooled


def _conformal_quantile(scores: torch.Tensor) -> float:
    """The INTERVAL_LEVEL quantile of the scores. Not split conformal's finite-sample ceil((n+1) level)/n:
    that guarantees at least 80% and so aims above it by about 1/n (a point or two on ~100 students);
    the aim here is 80% itself."""
    if scores.numel() == 0:
        return 1.0
    return float(torch.quantile(scores, INTERVAL_LEVEL).clamp(min=0.1))


def predict_all_steps(model: GradeForecaster, grades: np.ndarray, college: np.ndarray) -> np.ndarray:
    """Quantiles [N, S-1, len(QUANTILES)] in grade points; [:, t] predicts semester t+2 from semesters 1..t+1."""
    grades_t, college_t = torch.from_numpy(grades), torch.from_numpy(college)
    with torch.no_grad():  # in chunks: a million students' members at once would take gigabytes
        return np.concatenate([model.all_steps(grades_t[part], college_t[part]).numpy()
                               for part in chunks(len(grades))])
