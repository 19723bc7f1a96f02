"""The vanishing gradient, measured: how much of the loss's gradient reaches each earlier step.

A recurrent cell computes h_t = tanh(W_xh x_t + W_hh h_{t-1} + b), so the gradient that the
loss at the last step T sends back to the state k steps earlier is a product of k Jacobians
dh_t/dh_{t-1}. The textbook says that product shrinks (or blows up) geometrically with k in a
vanilla RNN, that gradient clipping tames the blowing up, and that the gates of the LSTM and
GRU were made to keep the gradient alive. This module trains four cells (nn.RNN, the same
cell written out by hand, nn.LSTM, nn.GRU) and measures ||dloss/dh_{T-k}|| against k.

The task: remember the first symbol. Each sequence is `length` random symbols out of
`symbols` (one-hot, plus a marker channel that is 1 at the first step), and the answer, read
from the last hidden state, is the first symbol. It was chosen over the adding problem
because the answer depends on exactly one step, the one farthest away: the gradient at
distance T-1 is the whole learning signal, so the measured curve and the accuracy speak about
the same thing. The symbols in between are random, so nothing but memory beats chance, and
chance is exact (accuracy 1/symbols, loss ln(symbols)).

Every cell starts from the same seeded weights for both trainings (with and without
clipping) and sees the same batches; everything runs on one thread, so a seed gives the
same numbers every time.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional

from cgpa_rnn.errors import UserError

CELLS = ("rnn", "elman", "lstm", "gru")
CLIPPING = ("no", "yes")
STAGES = ("initial", "trained")


@dataclass(frozen=True)
class LessonConfig:
    length: int = 50  # T: long enough that a vanilla RNN's gradient at T-1 is ~1e-14 of its value at 0
    symbols: int = 4
    hidden: int = 32
    batch: int = 64
    train_steps: int = 1500  # the GRU (the first to learn) has learnt by then on seeds 0-2; ~80 s in all
    learning_rate: float = 0.02
    max_norm: float = 1.0  # clip_grad_norm_'s threshold, the usual one
    measure_batch: int = 256  # sequences the gradient is averaged over (the same ones for every cell)
    test_batch: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.length < 2:
            raise UserError(f"--steps {self.length}: a sequence needs at least 2 steps to have a distance")
        if self.length > 1000:
            raise UserError(f"--steps {self.length}: at most 1000 (the measurement keeps every step's state)")
        if self.seed < 0:
            raise UserError(f"--seed {self.seed}: expected 0 or more")

    @classmethod
    def quick(cls, **overrides) -> LessonConfig:
        """Seconds instead of a minute: too short a training to trust its outcome, enough to exercise every part."""
        return replace(cls(length=20, hidden=16, train_steps=40, measure_batch=32, test_batch=128), **overrides)


def sequences(config: LessonConfig, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` sequences [count, length, symbols + 1] and their answers (the first symbols)."""
    symbol = torch.randint(0, config.symbols, (count, config.length), generator=generator)
    x = functional.one_hot(symbol, config.symbols + 1).float()
    x[:, 0, config.symbols] = 1.0  # the marker: "this is the step to remember"
    return x, symbol[:, 0]


class Elman(nn.Module):
    """The textbook cell, one network, written out:

        h_t = tanh(W_xh x_t + W_hh h_{t-1} + b),   y = W_hy h_T + b_y
    """

    def __init__(self, inputs: int, hidden: int, outputs: int):
        super().__init__()
        bound = 1 / math.sqrt(hidden)  # nn.RNN's initialisation, so the two vanilla cells start alike

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))

        self.W_xh, self.W_hh, self.b = uniform(hidden, inputs), uniform(hidden, hidden), uniform(hidden)
        self.W_hy, self.b_y = uniform(outputs, hidden), uniform(outputs)

    def initial(self, batch: int) -> torch.Tensor:
        return self.W_hh.new_zeros(batch, self.W_hh.shape[0])

    def step(self, x_t: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(x_t @ self.W_xh.T + state @ self.W_hh.T + self.b)
        return h, h

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.W_hy.T + self.b_y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(hidden_states(self, x)[-1])


class TorchCell(nn.Module):
    """nn.RNN (tanh), nn.LSTM or nn.GRU with a linear readout, with torch's own initialisation.

    Trained on whole sequences; measured stepped one time step at a time (a sequence of length 1
    per call), so that every step's hidden state is a tensor the gradient can be asked about. For the LSTM the
    state measured is h, its output; its cell state c is carried along but not measured."""

    def __init__(self, kind: str, inputs: int, hidden: int, outputs: int):
        super().__init__()
        self.kind = kind
        self.recurrent = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, outputs)

    def initial(self, batch: int):
        zeros = self.head.weight.new_zeros(batch, self.recurrent.hidden_size)
        return (zeros, zeros) if self.kind == "lstm" else zeros

    def step(self, x_t: torch.Tensor, state):
        if self.kind == "lstm":
            _, (h, c) = self.recurrent(x_t[:, None], (state[0][None], state[1][None]))
            h, c = h[0], c[0]  # one tensor recorded and carried on: a second view of h would not be in the graph
            return h, (h, c)
        _, h = self.recurrent(x_t[:, None], state[None])
        h = h[0]
        return h, h

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training takes torch's own loop over the sequence (the same sums, 2-6x faster than stepping).
        return self.head(self.recurrent(x)[0][:, -1])


def make_cell(cell: str, config: LessonConfig) -> nn.Module:
    torch.manual_seed(config.seed)  # the same start for both trainings of a cell, whatever ran before
    inputs = config.symbols + 1
    if cell == "elman":
        return Elman(inputs, config.hidden, config.symbols)
    return TorchCell(cell, inputs, config.hidden, config.symbols)


def hidden_states(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """h_1 ... h_T, each a node of the graph (the loop the textbook draws, unrolled)."""
    state, states = model.initial(x.shape[0]), []
    for t in range(x.shape[1]):
        h, state = model.step(x[:, t], state)
        states.append(h)
    return states


def gradient_by_distance(model: nn.Module, x: torch.Tensor, answer: torch.Tensor) -> list[float]:
    """[k] = the mean over the sequences of ||dloss/dh_{T-k}||, k = 0 ... T-1: the raw gradient.

    Measured in float64 on a copy: after a thousand products a float32 norm can round to zero,
    and a zero would say "no gradient" where there is a small one. The loss is summed over the
    sequences, so each sequence's gradient is that of its own loss, not 1/batch of it."""
    model = copy.deepcopy(model).double()
    states = hidden_states(model, x.double())
    loss = functional.cross_entropy(model.readout(states[-1]), answer, reduction="sum")
    gradients = torch.autograd.grad(loss, states)  # the total derivative, through every later step
    return [float(g.norm(dim=1).mean()) for g in reversed(gradients)]


def train(model: nn.Module, config: LessonConfig, clip: bool, generator: torch.Generator) -> dict:
    """Adam (as model/trainer.py uses) on fresh batches; with `clip`, each step's gradient is scaled down
    to norm max_norm when above it. Either way, counts the steps whose gradient norm was over max_norm:
    clipping can only matter there."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    over, largest = 0, 0.0
    for _ in range(config.train_steps):
        x, answer = sequences(config, config.batch, generator)
        loss = functional.cross_entropy(model(x), answer)
        optimizer.zero_grad()
        loss.backward()
        norm = float(nn.utils.clip_grad_norm_(model.parameters(), config.max_norm if clip else math.inf))
        over += norm > config.max_norm
        largest = max(largest, norm)
        optimizer.step()
    return {"over_threshold": over / config.train_steps, "largest_grad_norm": largest}


@torch.no_grad()
def test(model: nn.Module, x: torch.Tensor, answer: torch.Tensor) -> dict:
    logits = model(x)
    return {"test_loss": float(functional.cross_entropy(logits, answer)),
            "test_accuracy": float((logits.argmax(dim=1) == answer).float().mean())}


@dataclass
class Lesson:
    """What was measured: the rows of gradients.csv and of results.csv."""

    config: LessonConfig
    gradients: list[dict]
    results: list[dict]


def run_lesson(config: LessonConfig, report: Callable[[str], None] = lambda line: None) -> Lesson:
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest (two make the LSTM ~15x slower here)
    data = torch.Generator().manual_seed(config.seed)
    measure = sequences(config, config.measure_batch, data)
    held_out = sequences(config, config.test_batch, data)
    batches = data.get_state()  # every training replays the batches from here
    gradients, results = [], []

    def record(cell: str, clipping: str, stage: str, norms: list[float]) -> None:
        gradients.extend({"cell": cell, "clipping": clipping, "stage": stage, "seed": config.seed,
                          "distance": k, "grad_norm": norm} for k, norm in enumerate(norms))

    for cell in CELLS:
        start = make_cell(cell, config)
        initial = gradient_by_distance(start, *measure)
        for clipping in CLIPPING:
            record(cell, clipping, "initial", initial)  # one start for both trainings: two equal curves
            model = copy.deepcopy(start)
            began = time.perf_counter()
            trained = train(model, config, clipping == "yes", torch.Generator().set_state(batches))
            seconds = time.perf_counter() - began
            record(cell, clipping, "trained", gradient_by_distance(model, *measure))
            scores = test(model, *held_out)
            results.append({"cell": cell, "clipping": clipping, "seed": config.seed, **scores, **trained,
                            "train_seconds": round(seconds, 2)})
            report(f"trained {cell:>5}, clipping {clipping:>3}: test accuracy {scores['test_accuracy']:.3f} "
                   f"(chance {1 / config.symbols:.3f}) in {seconds:.1f} s")
    return Lesson(config, gradients, results)
