"""What a model is and how it is trained: plain dataclasses, the one home of every default.

No torch here, so the CLI can build its options from these fields (each field's
`help`, minGPT's merge-from-args idea) without importing torch, and `--help` starts fast.
Each value is range-checked when the config is made, so a bad option is one clear
message before any work starts.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from cgpa_rnn.errors import UserError

CELLS = ("gru", "lstm", "rnn", "elman")
# The network predicts these quantiles of the next grade: low, median, high. The outer two
# make the prediction interval, so its level (0.8) and the metric names follow from them.
QUANTILES = (0.1, 0.5, 0.9)
INTERVAL_LEVEL = round(QUANTILES[-1] - QUANTILES[0], 6)
COVERAGE_KEY = f"coverage{round(INTERVAL_LEVEL * 100)}"  # share of actual grades inside the interval
WIDTH_KEY = f"width{round(INTERVAL_LEVEL * 100)}"  # mean interval width, grade points

# Training at flat memory (model/batches.py). Up to FULL_BATCH_STUDENTS training students each step takes them
# all, as every cohort always did; above, steps take minibatches. Measured on the synthetic cohort with 8 semesters
# and the default settings, full batch against minibatches: 4,250 training students 928 MB against 396 MB peak,
# 19 s both, held-out MAE 0.4546 against 0.4544; 10,200 students 1,581 MB against 694 MB, 41 s against 40 s, MAE
# 0.4553 against 0.4545; 17,000 students 3.1 GB and 78 s full batch. The shipped cohort (240 students) and the
# demo's uploads (3,000 rows at most) stay below it.
FULL_BATCH_STUDENTS = 5000
MINIBATCH = 1024  # students per step above it: per student, 1,024 cost as little as 16,384 and 4x less than 256
EPOCH_STUDENTS = 50_000  # an epoch of a bigger set: early stopping looks this often, and epochs bound the work
HELD_OUT_STUDENTS = 8192  # the fixed sample a bigger set stops early and calibrates its intervals on
CHUNK_STUDENTS = 16_384  # students per pass without gradients (predictions over a test set)


def option(default, help: str, low=None, high=None, flag: str | None = None, **kwargs):
    """A config field with its command-line help and its allowed range [low, high]."""
    metadata = {"help": help, "range": (low, high), "flag": flag}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


def check_ranges(config) -> None:
    for spec in fields(config):
        low, high = spec.metadata.get("range", (None, None))
        values = getattr(config, spec.name)
        for value in values if isinstance(values, tuple) else (values,):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if (low is not None and not value >= low) or (high is not None and not value <= high):
                bounds = f"at least {low}" if high is None else f"between {low} and {high}"
                raise UserError(f"{spec.name.replace('_', '-')}: {value!r} is out of range; expected {bounds}")


@dataclass
class ModelConfig:
    cell: str = option("elman", f"recurrent cell: {', '.join(CELLS)}")
    hidden: int = option(4, "hidden units per layer and member", low=1, high=1024)
    layers: int = option(1, "stacked recurrent layers (elman: 1)", low=1, high=8)
    dropout: float = option(0.0, "dropout between stacked layers", low=0.0, high=0.9)
    ensemble: int = option(8, "networks averaged, each with its own seed and validation students", low=1, high=64)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise UserError(f"unknown cell {self.cell!r}; valid cells: {', '.join(CELLS)}")
        if self.cell == "elman" and self.layers != 1:
            raise UserError("the hand-written elman cell has one layer; use --layers 1")
        check_ranges(self)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    learning_rate: float = option(0.01, "AdamW learning rate", low=1e-6, high=1.0, flag="--lr")
    weight_decay: float = option(0.1, "AdamW weight decay (pulls the prior back to its fitted start and the "
                                      "correction towards zero)", low=0.0, high=10.0)
    batch_size: int = option(0, "students per step; 0: the whole training set up to --minibatch-above students, "
                                f"{MINIBATCH:,} above", low=0)
    minibatch_above: int = option(FULL_BATCH_STUDENTS, "training students above which training takes minibatches, "
                                  f"epochs of at most {EPOCH_STUDENTS:,} students, and stops early and calibrates on "
                                  f"a fixed sample of {HELD_OUT_STUDENTS:,} held-out ones, at flat memory", low=1)
    max_epochs: int = option(200, "epochs at most; early stopping usually ends sooner", low=1, high=100_000,
                             flag="--epochs")
    patience: int = option(25, "epochs without a better validation loss before stopping", low=1)
    grad_clip: float = option(1.0, "gradient norm clip", low=1e-6)
    college_dropout: float = option(0.3, "share of training rows shown as 'college unknown'", low=0.0, high=0.9)
    weight_average: float = option(0.9, "decay of the moving average of weights that is kept", low=0.0, high=0.999)
    validation: float = option(0.2, "share of training students each member stops early on", low=0.05, high=0.5)
    tune_weight_decay: tuple[float, ...] = option((), "weight decays to try instead, the one with the lowest "
                                                      "validation loss kept (all trained at once)", low=0.0, high=10.0)
    seed: int = option(0, "seed of the split, initialisation and batches", low=0)
    max_seconds: float = option(0.0, "stop training after this many seconds, keeping each network's best epoch so "
                                     "far (runs then depend on the machine's speed); 0: no limit", low=0.0)

    def __post_init__(self):
        check_ranges(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values["tune_weight_decay"] = tuple(values.get("tune_weight_decay", ()))
        return cls(model=ModelConfig(**values.pop("model", {})), **values)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
