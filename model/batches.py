"""How a training reads its students: all at once, or in minibatches above a measured size.

Up to `TrainConfig.minibatch_above` training students (with --batch-size 0) every step takes all of
them, early stopping reads every member's validation students and the intervals are calibrated on
all of them: the small cohorts this project was built on train exactly as they always have.
Above it, memory stays flat whatever the cohort's size:

- each step takes MINIBATCH students (or --batch-size), in a shuffled order that runs on from
  one epoch into the next, so every student is read before any is read twice;
- an epoch, what early stopping and --epochs count, is a pass over the training students or
  EPOCH_STUDENTS of them, whichever is fewer: a bigger cohort needs fewer passes, and
  --epochs x EPOCH_STUDENTS bounds its work whatever its size;
- early stopping and the calibration of both intervals read one fixed, seeded sample of
  HELD_OUT_STUDENTS students that some member held out, each scored by the members that held it out;
- predictions over many students (the held-out test set) run CHUNK_STUDENTS at a time.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from cgpa_rnn.model.config import CHUNK_STUDENTS, EPOCH_STUDENTS, HELD_OUT_STUDENTS, MINIBATCH, TrainConfig

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # grades, college, member weights, hidden


@dataclass(frozen=True)
class Plan:
    """How one training of `students` reads them."""

    students: int
    batch: int  # students per step
    epoch: int  # students per epoch
    sampled: bool  # held-out passes read a fixed sample (above the threshold), not every held-out student

    @classmethod
    def of(cls, config: TrainConfig, students: int) -> Plan:
        sampled = students > config.minibatch_above
        batch = min(config.batch_size or (MINIBATCH if sampled else students), students)
        return cls(students, batch, min(students, EPOCH_STUDENTS) if sampled else students, sampled)

    @property
    def steps(self) -> int:
        """Steps per epoch."""
        return math.ceil(self.epoch / self.batch)


class Batches:
    """Called once per epoch (model/trainer.py's train_batch), it yields that epoch's steps: grades [B, S],
    college [B], each member's weight [E, B] (1: a student it learns from) and whose college is hidden [B]."""

    def __init__(self, plan: Plan, grades: torch.Tensor, college: torch.Tensor, weights: torch.Tensor,
                 college_dropout: float, generator: torch.Generator):
        self.plan, self.grades, self.college, self.weights = plan, grades, college, weights
        self.dropout, self.generator = college_dropout, generator
        # The running order, and how far into it the steps have read: all of it, so the first step shuffles.
        self.order, self.read = torch.arange(0), plan.students

    def __call__(self) -> Iterator[Batch]:
        n = self.plan.students
        if self.plan.batch == n:  # the whole set: one step, the college hidden for a fresh share of students
            yield self.grades, self.college, self.weights, torch.rand(n, generator=self.generator) < self.dropout
            return
        for _ in range(self.plan.steps):
            if self.read >= n:
                self.order, self.read = torch.randperm(n, generator=self.generator), 0
            rows = self.order[self.read:self.read + self.plan.batch]
            self.read += len(rows)
            # Some students are shown as "college unknown", so that slot learns the average college.
            hidden = torch.rand(len(rows), generator=self.generator) < self.dropout
            yield self.grades[rows], self.college[rows], self.weights[:, rows], hidden


def held_out_sample(plan: Plan, validation_rows: torch.Tensor, seed: int) -> torch.Tensor:
    """The students early stopping and calibration read ([K] indices, ascending): every student when the
    set is small, else a fixed sample of HELD_OUT_STUDENTS of those some member held out."""
    if not plan.sampled:
        return torch.arange(plan.students)
    held_out = torch.nonzero(validation_rows.sum(0) > 0).squeeze(1)
    generator = torch.Generator().manual_seed(seed)
    return held_out[torch.randperm(len(held_out), generator=generator)[:HELD_OUT_STUDENTS]].sort().values


def chunks(students: int) -> Iterator[slice]:
    """Consecutive slices of at most CHUNK_STUDENTS, one pass without gradients each (one empty slice of none)."""
    for start in range(0, max(students, 1), CHUNK_STUDENTS):
        yield slice(start, start + CHUNK_STUDENTS)
