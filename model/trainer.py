"""Training: every member of an ensemble at once, AdamW, a moving average of weights, early stopping.

The trainer knows the model only through `model.loss(*batch)`, which returns one loss per
member ([E]), and one convention: every parameter has the member as its first dimension.
That is enough to train all members as one model (one batched forward and backward per
step) while keeping them independent: gradients are clipped per member, weight decay is
per member, and each member keeps the moving average of its weights at its own best
validation epoch; once a member has gone `patience` epochs without improving, its kept
weights are final (frozen) and it only rides along until every member has stopped.

Progress and time limits are callbacks (minGPT's trigger_callbacks): the console bar
and the demo's progress display are two callbacks, the time budget a third.
"""
from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cgpa_rnn.model.config import TrainConfig

# A validation loss counts as better only by this much (normalised pinball units, ~0.4): smaller
# steps are noise on ~30 validation students, and each one would keep the whole batch training.
MIN_IMPROVEMENT = 1e-4


@dataclass
class History:
    """Per member: training and validation loss per epoch, and the epoch kept."""

    train: list[list[float]] = field(default_factory=list)
    validation: list[list[float]] = field(default_factory=list)
    best_epoch: list[int] = field(default_factory=list)
    steps: int = 0  # optimizer steps taken
    tuning: dict[str, float] = field(default_factory=dict)  # weight decay -> validation loss
    weight_decay: float = 0.0  # the one chosen
    time_limited: int = 0  # members stopped by the time budget rather than by early stopping
    prior_only: bool = False  # the median is the prior's, persistence (model/fitting.py says when)
    persistence_evidence: float = 0.0  # standard errors by which the prior's best fit beat persistence


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[E] -> broadcastable against a parameter [E, ...]."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def decay_factors(parameters: list[torch.Tensor], lr: float, weight_decay: torch.Tensor) -> list[torch.Tensor]:
    """AdamW's decoupled weight decay as factors, p <- p (1 - lr decay), with each member's own decay [E]:
    one per parameter, broadcastable against it, the same every step."""
    return [1 - lr * _per_member(weight_decay, p) for p in parameters]


def clip_per_member(parameters: list[torch.Tensor], max_norm: float) -> None:
    """Scale each member's gradient to a norm of at most max_norm (clip_grad_norm_, per member)."""
    squares = sum(p.grad.pow(2).reshape(p.shape[0], -1).sum(1) for p in parameters)
    factor = (max_norm / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    for p in parameters:
        p.grad.mul_(_per_member(factor, p.grad))


class Trainer:
    """Train `model` on `train_batch()` (called once per epoch; it yields the steps' batches) and
    stop early on `validation_batch`."""

    def __init__(self, config: TrainConfig, model: torch.nn.Module, train_batch: Callable[[], tuple],
                 validation_batch: tuple, weight_decay: torch.Tensor):
        self.config, self.model = config, model
        self.train_batch, self.validation_batch = train_batch, validation_batch
        self.parameters = list(model.parameters())
        self.members = self.parameters[0].shape[0]
        assert all(p.shape[0] == self.members for p in self.parameters), "every parameter needs a member dimension"
        # torch.optim.AdamW with its decay off: the decay differs per member, within one tensor, so it is
        # applied before each step by `decay`, exactly where AdamW applies its own. Constructing it imports
        # torch._dynamo, ~1 s once per process (torch 2.13). foreach: one call per operation for all
        # parameters rather than one per parameter, the same numbers in less time (a small cohort's step
        # takes milliseconds, much of it such calls).
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.learning_rate, weight_decay=0.0, foreach=True)
        self.decay = decay_factors(self.parameters, config.learning_rate, weight_decay)
        self.callbacks = defaultdict(list)
        self.epoch, self.stop = 0, False  # a callback may set stop (a time budget)
        self.history = History()

    def add_callback(self, event: str, callback: Callable[[Trainer], None]) -> None:
        self.callbacks[event].append(callback)

    def trigger_callbacks(self, event: str) -> None:
        for callback in self.callbacks[event]:
            callback(self)

    def run(self) -> History:
        config = self.config
        # Validation and the kept weights use an exponential moving average of the weights:
        # on ~150 students single full-batch steps are noisy, the average is not.
        averaged = copy.deepcopy(self.model)
        averaged.eval()
        average = list(averaged.parameters())
        best_weights = [p.detach().clone() for p in average]
        best_loss = torch.full((self.members,), float("inf"))
        best_epoch = torch.zeros(self.members, dtype=torch.long)
        train_curve, validation_curve = [], []
        for self.epoch in range(config.max_epochs):
            self.model.train()
            for batch in self.train_batch():
                losses = self.model.loss(*batch)
                self.optimizer.zero_grad()
                losses.sum().backward()  # members share no parameter: each gets its own gradient
                for p in self.parameters:
                    if p.grad is None:  # unused on this horizon (two semesters: one step, no recurrence)
                        p.grad = torch.zeros_like(p)
                clip_per_member(self.parameters, config.grad_clip)
                with torch.no_grad():
                    for p, factor in zip(self.parameters, self.decay):
                        p.mul_(factor)
                self.optimizer.step()
                self.history.steps += 1
                with torch.no_grad():
                    for kept, p in zip(average, self.parameters):
                        kept.lerp_(p, 1 - config.weight_average)
            with torch.no_grad():
                validation = averaged.loss(*self.validation_batch)
            improved = validation < best_loss - MIN_IMPROVEMENT
            if improved.any():
                best_loss = torch.where(improved, validation, best_loss)
                best_epoch = torch.where(improved, self.epoch, best_epoch)
                for kept, current in zip(best_weights, average):
                    kept.copy_(torch.where(_per_member(improved, kept), current, kept))
            train_curve.append(losses.detach())
            validation_curve.append(validation)
            self.trigger_callbacks("on_epoch_end")
            if bool(((self.epoch - best_epoch) >= config.patience).all()) or self.stop:
                break
        with torch.no_grad():
            for p, kept in zip(self.parameters, best_weights):
                p.copy_(kept)
        self.model.eval()
        history = self.history
        history.train = torch.stack(train_curve, 1).tolist()
        history.validation = torch.stack(validation_curve, 1).tolist()
        history.best_epoch = best_epoch.tolist()
        # Members a time budget cut short: still improving within the patience window.
        history.time_limited = int(((self.epoch - best_epoch) < config.patience).sum()) if self.stop else 0
        return history


class TimeBudget:
    """Stop after `seconds`, each member keeping its best epoch so far."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def __call__(self, trainer: Trainer) -> None:
        if time.monotonic() > self.deadline:
            trainer.stop = True


class ShareDone:
    """Report the share of the epoch budget done to `report` (a UI's progress bar)."""

    def __init__(self, report: Callable[[float], None]):
        self.report = report

    def __call__(self, trainer: Trainer) -> None:
        self.report((trainer.epoch + 1) / trainer.config.max_epochs)


class ConsoleBar:
    """A tqdm bar on the console, closed by close()."""

    def __init__(self, description: str):
        from tqdm import tqdm

        self.bar = tqdm(desc=description, leave=False, unit="epoch")

    def __call__(self, trainer: Trainer) -> None:
        if self.bar.total is None:
            self.bar.total = trainer.config.max_epochs
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
