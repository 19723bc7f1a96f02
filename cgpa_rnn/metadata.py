"""What an ONNX file of ours says about itself, checked once, when it is loaded.

The exporter writes `metadata_props` (semesters, semester names, colleges, the checkpoint's
and the training data's fingerprints, the interval level); anyone can edit them. A file
whose metadata is not what the exporter writes, or disagrees with the graph (a `semesters`
other than the width of the `grades` input), is refused here with one line naming the key,
before any value is used to size an array or fill a page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cgpa_rnn.encoding import COLLEGE_CODES, DEFAULT_SCALE, Groups, Scale
from cgpa_rnn.errors import UserError
from cgpa_rnn.jsontext import JsonError, bounded_loads
from cgpa_rnn.values import SEMESTER_LIMIT

DEFAULT_INTERVAL_LEVEL = 0.8  # files exported before the level was written down were all 80%
INPUTS = {"grades": ("tensor(float)", 2), "college": ("tensor(int64)", 1)}
OUTPUTS = ("prediction", "low", "high")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_OUTPUTS_LEVEL = re.compile(r"\((\d{1,2})% interval\)")  # how older files stated the level in `outputs`
MAX_COLLEGES = 100_000


class MetadataError(UserError):
    """A model file's metadata is missing, malformed or disagrees with its graph."""


@dataclass(frozen=True)
class ModelMetadata:
    semesters: int
    semester_names: list[str]
    colleges: list[int]
    checkpoint_sha256: str
    training_data_sha256: str | None  # None for a synthetic cohort
    interval_level: float  # 0.8: the (low, high) outputs hold 80% of outcomes
    scale: Scale = DEFAULT_SCALE
    groups: Groups = COLLEGE_CODES
    training_grades: tuple[float, float] | None = None  # mean and spread of the training students' grades


def _json(raw: dict, key: str, where: str):
    if key not in raw:
        raise MetadataError(f"{where}: metadata '{key}' is missing; re-export the model with `cgpa export`")
    try:
        return bounded_loads(raw[key], f"{where}: metadata '{key}'")
    except JsonError as error:
        raise MetadataError(str(error)) from None


def _bad(where: str, key: str, expected: str) -> MetadataError:
    return MetadataError(f"{where}: metadata '{key}' is not {expected}")


def check_graph(inputs: dict[str, tuple[str, list]], outputs: list[str], where: str) -> None:
    """The graph's inputs are `grades` float32 [batch, S] and `college` int64 [batch]."""
    for name, (element, rank) in INPUTS.items():
        if name not in inputs or inputs[name][0] != element or len(inputs[name][1]) != rank:
            found = ", ".join(f"{n} {t} {s}" for n, (t, s) in inputs.items())
            raise MetadataError(f"{where}: not a cgpa-rnn model: expected inputs grades tensor(float) [batch, "
                                f"semesters] and college tensor(int64) [batch], found {found}")
    if [name for name in outputs if name in OUTPUTS] != list(OUTPUTS):
        raise MetadataError(f"{where}: not a cgpa-rnn model: expected outputs {', '.join(OUTPUTS)}, found "
                            f"{', '.join(outputs)}")


def read_metadata(raw: dict[str, str], grades_shape: list, where: str) -> ModelMetadata:
    """Validate the custom metadata of a file whose `grades` input has `grades_shape`."""
    if "semesters" not in raw:
        raise MetadataError(f"{where}: not a cgpa-rnn model (no 'semesters' metadata)")
    text = raw["semesters"].strip()
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= SEMESTER_LIMIT:
        raise _bad(where, "semesters", f"a whole number between 1 and {SEMESTER_LIMIT} (found {text[:20]!r})")
    semesters = int(text)
    width = grades_shape[1]
    if isinstance(width, int) and width != semesters:
        raise MetadataError(f"{where}: metadata 'semesters' is {semesters} but the graph's grades input has "
                            f"{width} columns")
    names = _json(raw, "semester_names", where)
    if not (isinstance(names, list) and len(names) == semesters and all(isinstance(n, str) for n in names)):
        raise _bad(where, "semester_names", f"a JSON list of {semesters} names")
    colleges = _json(raw, "colleges", where)
    if not (isinstance(colleges, list) and len(colleges) <= MAX_COLLEGES
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 2 ** 63 for c in colleges)):
        raise _bad(where, "colleges", "a JSON list of non-negative integer college codes")
    checkpoint = raw.get("checkpoint_sha256", "")
    if not _SHA256.fullmatch(checkpoint):
        raise _bad(where, "checkpoint_sha256", "a SHA-256 (64 hexadecimal digits)")
    source = _json(raw, "data_source", where)
    data_sha256 = source.get("sha256") if isinstance(source, dict) else ""
    if not isinstance(source, dict) or not (data_sha256 is None or _SHA256.fullmatch(str(data_sha256))):
        raise _bad(where, "data_source", "a JSON object with the training data's sha256")
    return ModelMetadata(semesters, names, colleges, checkpoint, data_sha256, _interval_level(raw, where),
                         *_cohort_terms(raw, colleges, where))


def _cohort_terms(raw: dict[str, str], colleges: list[int], where: str) -> tuple[Scale, Groups, tuple | None]:
    """The scale, the group column with its labels, and the training grades' mean and spread. Files
    exported before these keys existed were all 0-10 with integer college codes."""
    try:
        scale = Scale.parse(raw.get("scale", "0-10"))
    except UserError:
        raise _bad(where, "scale", "LOW-HIGH like 0-10") from None
    column = _json(raw, "group_column", where) if "group_column" in raw else COLLEGE_CODES.column
    labels = _json(raw, "group_labels", where) if "group_labels" in raw else None
    try:
        groups = Groups.from_json({"column": column, "codes": colleges, "labels": None})
        if labels is not None:
            groups = Groups.from_json(Groups.of_labels(column, labels).to_json())
    except (ValueError, TypeError) as error:
        raise _bad(where, "group_column/group_labels", f"a column name and a list of short labels ({error})") from None
    training = _json(raw, "training_grades", where) if "training_grades" in raw else None
    if training is not None:
        if not (isinstance(training, dict) and all(isinstance(training.get(k), (int, float)) for k in ("mean", "std"))):
            raise _bad(where, "training_grades", "a JSON object with the mean and std of the training grades")
        training = (float(training["mean"]), float(training["std"]))
    return scale, groups, training


def _interval_level(raw: dict[str, str], where: str) -> float:
    if "interval_level" in raw:
        text = raw["interval_level"].strip()
        if not re.fullmatch(r"0?\.[0-9]{1,6}", text) or not 0 < float(text) < 1:
            raise _bad(where, "interval_level", f"a fraction between 0 and 1 like 0.8 (found {text[:20]!r})")
        return float(text)
    stated = _OUTPUTS_LEVEL.search(raw.get("outputs", ""))
    return int(stated.group(1)) / 100 if stated else DEFAULT_INTERVAL_LEVEL
