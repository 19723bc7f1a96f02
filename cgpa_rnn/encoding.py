"""What a cohort's values mean: its grade scale and its group codes. Both belong to the data
and travel with the model (checkpoint, run record, ONNX metadata, card); no reader assumes them.

A scale is the range grades live in (0-10 for the shipped data; 0-4, 0-5, 0-20 or 0-100
elsewhere). A grade outside it is refused with the scales it would fit, and the network
clips its forecasts to it.

A group is the static covariate each student belongs to (a college, a school, a programme),
read from one column (`College Code` by default, any column with `--group`). The ONNX graph
takes it as an int64 code, so every runtime can feed it:

- integer codes (115, 116...) are their own codes, as before;
- text codes ("GP", "MS") get the codes 1..V in sorted order, and the model's metadata lists
  the labels (`group_labels`), so an embedder maps text to code with that list alone;
- a cohort without a group column has one group, code 0.

A value the model did not see maps to the model's shared "unknown" slot.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cgpa_rnn.errors import UserError

COMMON_SCALES = (4.0, 5.0, 10.0, 20.0, 100.0)  # tops of the scales institutions grade on, suggested in messages
_SCALE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*-\s*([0-9]+(?:\.[0-9]+)?)\s*")
MAX_GROUPS = 100_000
MAX_LABEL_CHARS = 64
NO_GROUP_CODE = 0  # the one group of a cohort without a group column


@dataclass(frozen=True)
class Scale:
    """The grade range [low, high]."""

    low: float = 0.0
    high: float = 10.0

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 <= self.low < self.high <= 1e6):
            raise UserError(f"scale {self.low:g}-{self.high:g}: expected LOW-HIGH with 0 <= LOW < HIGH, like 0-10")

    @classmethod
    def parse(cls, text: str, option: str = "--scale") -> Scale:
        match = _SCALE.fullmatch(str(text))
        if not match:
            raise UserError(f"{option}: expected LOW-HIGH like 0-10, 0-4 or 0-20, got {str(text)[:40]!r}")
        return cls(float(match.group(1)), float(match.group(2)))

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g}"

    def contains(self, number: float) -> bool:
        return self.low <= number <= self.high

    def fitting(self, number: float) -> str:
        """The common scales a grade would fit, for a message: 'it fits 0-20 or 0-100'."""
        tops = [top for top in COMMON_SCALES if 0 <= number <= top and top != self.high]
        names = [f"0-{top:g}" for top in tops[:2]]
        return f"it fits a {' or '.join(names)} scale" if names else "it fits none of the common scales"

    def at_risk_line(self) -> float:
        """The line below which a student is at risk, unless told otherwise: 60% of the way up the scale
        (6 on 0-10, 12 on 0-20, 2.4 on 0-4)."""
        return round(self.low + 0.6 * (self.high - self.low), 2)

    def to_json(self) -> list[float]:
        return [self.low, self.high]

    @classmethod
    def from_json(cls, value) -> Scale:
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise ValueError("expected [low, high]")
        return cls(float(value[0]), float(value[1]))


DEFAULT_SCALE = Scale()  # the shipped data set's 10-point scale


@dataclass(frozen=True)
class Groups:
    """The group column of a model and its vocabulary: codes[k] is the graph's code for labels[k]."""

    column: str | None  # the header's name for it ("College Code"); None: the cohort has no group column
    codes: tuple[int, ...]
    labels: tuple[str, ...] | None = None  # text codes; None when the codes are the integers themselves

    @property
    def text(self) -> bool:
        return self.labels is not None

    def names(self) -> list[str]:
        """How people write each known group."""
        return list(self.labels) if self.labels is not None else [str(c) for c in self.codes]

    def code(self, value) -> int:
        """The graph's code of a raw value (a cell, a form field, a number). An unknown text label
        gets -1, which no model knows: the shared unknown slot. Raises ValueError with what was expected."""
        from cgpa_rnn.values import WHITESPACE, integer_code, preview

        if self.column is None:
            return NO_GROUP_CODE
        if self.labels is None:
            return integer_code(value, self.column.lower() if "code" in self.column.lower() else f"{self.column} code")
        text = "" if value is None else str(value).strip(WHITESPACE)
        if not text:
            raise ValueError(f"expected a {self.column} value (like {preview(self.labels[0])}), got a blank")
        return self.codes[self.labels.index(text)] if text in self.labels else -1

    @classmethod
    def of_labels(cls, column: str | None, labels: tuple[str, ...]) -> Groups:
        """Text labels get the codes 1..V in their order (the rule an embedder applies with group_labels)."""
        return cls(column, tuple(range(1, len(labels) + 1)), tuple(labels))

    def describe(self) -> str:
        if self.column is None:
            return "no group column"
        shown = ", ".join(self.names()[:12]) + (", ..." if len(self.codes) > 12 else "")
        return f"{self.column}: {shown}"

    def to_json(self) -> dict:
        return {"column": self.column, "codes": list(self.codes), "labels": None if self.labels is None
                else list(self.labels)}

    @classmethod
    def from_json(cls, value: dict) -> Groups:
        column, codes, labels = value.get("column"), value.get("codes"), value.get("labels")
        if not (column is None or (isinstance(column, str) and len(column) <= 200)):
            raise ValueError("column: expected a name or null")
        if not (isinstance(codes, list) and len(codes) <= MAX_GROUPS
                and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 2 ** 63 for c in codes)):
            raise ValueError("codes: expected a list of non-negative integers")
        if labels is not None and not (isinstance(labels, list) and len(labels) == len(codes)
                                       and all(isinstance(t, str) and len(t) <= MAX_LABEL_CHARS for t in labels)):
            raise ValueError("labels: expected a list of short texts, one per code")
        return cls(column, tuple(codes), None if labels is None else tuple(labels))


def groups_of(column: str | None, values: list[str]) -> tuple[Groups, list[int]]:
    """A cohort's group vocabulary and each student's code, from the column's raw cells.

    Integer cells keep their numbers; as soon as one cell is text, every cell is a label
    (so "7" and "A1" in one column are two labels, never a number and a label)."""
    from cgpa_rnn.values import WHITESPACE, integer_code

    if column is None:
        return Groups(None, (NO_GROUP_CODE,)), [NO_GROUP_CODE] * len(values)
    try:
        codes = [integer_code(v) for v in values]
        return Groups(column, tuple(sorted(set(codes)))), codes
    except ValueError:
        pass
    texts = [str(v).strip(WHITESPACE) for v in values]  # the caller refused blank cells
    labels = tuple(sorted(set(texts)))
    too_long = next((t for t in labels if len(t) > MAX_LABEL_CHARS), None)
    if too_long is not None:
        raise ValueError(f"a {column} value is longer than {MAX_LABEL_CHARS} characters ({too_long[:40]!r}...)")
    groups = Groups.of_labels(column, labels)
    index = dict(zip(labels, groups.codes))
    return groups, [index[t] for t in texts]


# What records and model files made before groups were written down hold: integer college codes.
COLLEGE_CODES = Groups("College Code", ())
