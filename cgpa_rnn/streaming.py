"""`cgpa predict --csv`: a cohort file of any length scored in blocks, in bounded memory.

The file is read in blocks of whole records (a newline outside quotes ends a record). Within
a block, every record is checked column-wise with numpy: a record is on the fast path when
its cells need nothing but splitting at commas (no quotes, no whitespace at a cell's edge, no
formula start, as many cells as the header) and its grades and college code are plain ASCII
decimals that score without an error. Fast records are scored as one batch, and their output
line is the input line with the added columns appended. Every other record (a bad grade, a
quoted cell, a blank row...) goes through `scoring.score_table`, the reference that builds
each row's message, so both paths write the same rows, checked by tests on messy files.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgpa_rnn.errors import DataError
from cgpa_rnn.predictor import Predictor
from cgpa_rnn.rules import last_observed
from cgpa_rnn.rundir import atomic_path
from cgpa_rnn.scoring import (
    ADDED_COLUMNS,
    HindcastSummary,
    HindcastTally,
    csv_cells,
    score_table,
    scoring_header,
    served,
    spreadsheet_safe,
)
from cgpa_rnn.table import Limits, Table, check_input_file, detect_delimiter, header_columns, row_cells

BLOCK_BYTES = 2 << 20  # ~50k records: what a block costs (~200 MB of arrays at its peak) stays bounded
MAX_RECORD_BYTES = 1 << 20  # a record longer than this is an unclosed quote, not a student
FAST_CELL_BYTES = 15  # longer numbers take the reference path (15 digits are exact in float64)
MAX_FAST_LINE = 400  # longer lines too, so a block's byte matrices stay narrow
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class StreamResult:
    rows: int  # student rows written (blank rows are left out, as the table reader does)
    scored: int  # of which scored without an error
    hindcast: HindcastSummary | None
    warning: str | None = None  # the grades are unlike the model's training cohort (Predictor.unfamiliar)


def _layouts() -> dict[int, np.ndarray]:
    """For each decimal exponent -4..5, which of (six digits, '.', '0', NUL) fills each of 12 places."""
    digit, point, zero, empty = range(6), 6, 7, 8
    layouts = {}
    for exponent in range(-4, 6):
        if exponent >= 0:  # 7.32251, 73.2251, ..., 732251
            places = [*digit[:exponent + 1], point, *digit[exponent + 1:]]
        else:  # 0.732251, 0.0732251, ...
            places = [zero, point] + [zero] * (-exponent - 1) + list(digit)
        layouts[exponent] = np.array((places + [empty] * 12)[:12])
    return layouts


_LAYOUTS = _layouts()


def format_numbers(values: np.ndarray) -> np.ndarray:
    """f"{v:.6g}" of every value of a float64 array, as S12 bytes (b"" for NaN), vectorised.

    Values from 1e-4 to 1e6 are laid out from v * 10**d rounded to six digits: that product
    is exact for the values scoring writes (float32 outputs and their differences), so the
    rounding is the decimal rounding printf does. Other values (negative, or in exponent
    notation) are formatted one by one."""
    values = np.asarray(values, dtype=np.float64)
    chars = np.zeros((len(values), 12), dtype=np.uint8)
    fast = np.flatnonzero((values >= 1e-4) & (values < 1e6))
    value = values[fast]
    exponent = np.floor(np.log10(value)).astype(np.int64)
    exponent += value >= 10.0 ** (exponent + 1)  # log10 can be a hair off at powers of ten
    exponent -= value < 10.0 ** exponent
    digits = np.rint(value * 10.0 ** (5 - exponent)).astype(np.int64)
    carried = digits >= 10 ** 6  # 9.999996 rounds to 10
    exponent, digits = exponent + carried, np.where(carried, digits // 10, digits)
    keep = exponent < 6  # 999999.5 rounds to 1e+06: exponent notation
    fast, exponent, digits = fast[keep], exponent[keep], digits[keep]
    source = np.empty((len(digits), 9), dtype=np.uint8)
    source[:, :6] = 48 + digits[:, None] // 10 ** np.arange(5, -1, -1) % 10
    source[:, 6:] = (46, 48, 0)
    trailing_zeros = sum((digits % 10 ** k == 0).astype(np.int64) for k in range(1, 6))
    fraction = np.where(exponent >= 0, np.maximum(5 - exponent - trailing_zeros, 0), 0)
    length = np.where(exponent >= 0, exponent + 1 + (fraction > 0) * (1 + fraction),
                      2 + (-exponent - 1) + 6 - trailing_zeros)
    layout = np.empty((len(digits), 12), dtype=np.uint8)
    for value_exponent in np.unique(exponent).tolist():
        rows = exponent == value_exponent
        layout[rows] = source[rows][:, _LAYOUTS[value_exponent]]
    layout[np.arange(12) >= length[:, None]] = 0  # trailing zeros of the fraction, and a bare point
    chars[fast] = layout
    chars[values == 0, 0] = 48
    text = chars.view("S12").ravel()
    others = np.flatnonzero(~np.isnan(values) & (values != 0))
    for i in others[~np.isin(others, fast)]:
        text[i] = f"{values[i]:.6g}".encode()
    return text


def _gather(block: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The byte ranges [start, end) as rows of a NUL-padded matrix (rows copied from a
    sliding-window view of the block: no index matrix)."""
    lengths = ends - starts
    width = max(int(lengths.max(initial=0)), 1)
    padded = np.concatenate([block, np.zeros(width, dtype=np.uint8)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)[starts]
    rows[np.arange(width) >= lengths[:, None]] = 0
    return rows


def _numbers(block: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Cells of plain ASCII decimal notation (digits, at most one point), as float64; `ok` marks
    them, `empty` the empty cells. Read left to right, a byte column at a time (Horner)."""
    lengths = ends - starts
    chars = _gather(block, starts, np.minimum(ends, starts + FAST_CELL_BYTES + 1))
    mantissa = np.zeros(len(starts), dtype=np.int64)
    places = np.zeros(len(starts), dtype=np.int64)  # digits after the point
    points = np.zeros(len(starts), dtype=np.int64)
    seen_digit, bad = np.zeros(len(starts), dtype=bool), lengths > FAST_CELL_BYTES
    for column in chars.T:
        digit = (column >= 48) & (column <= 57)
        point = column == 46
        bad |= (column != 0) & ~digit & ~point
        mantissa = np.where(digit, mantissa * 10 + (column - 48), mantissa)
        places += digit & (points > 0)
        points += point
        seen_digit |= digit
    ok = ~bad & (points <= 1) & seen_digit
    return mantissa / 10.0 ** places, ok, lengths == 0


class _Scorer:
    """One file's header, model and running totals; `block` turns records into output bytes."""

    def __init__(self, columns: list[str], where: str, backends: dict[str, Predictor], hindcast_last_given: bool,
                 delimiter: str = ","):
        self.columns, self.where, self.backends = columns, where, backends
        self.hindcast_last_given, self.delimiter = hindcast_last_given, delimiter
        # All a blank row holds (a CRLF's CR is left out of a record already; a lone CR is refused by the reference)
        self.blank_bytes = np.frombuffer(f"{delimiter} \t".encode(), dtype=np.uint8)
        self.reference = next(iter(backends.values()))
        self.served = served(backends)
        self.header = scoring_header(columns, where, self.reference)
        # The fast path reads comma-separated files with integer group codes; every other file (semicolons,
        # text codes, no group column) is scored record by record by the reference path.
        self.fast = delimiter == "," and self.header.college is not None and not self.reference.groups.text
        self.college = columns.index(self.header.college) if self.header.college else None
        self.grade_columns = [(columns.index(c), n - 1) for c, n in zip(self.header.semesters, self.header.numbers)]
        self.tally, self.rows, self.scored = HindcastTally(), 0, 0
        self.grade_sum, self.grade_count = 0.0, 0  # of the grades scored rows gave: Predictor.unfamiliar's rule

    def _count_grades(self, seen: np.ndarray) -> None:
        observed = ~np.isnan(seen)
        self.grade_sum += float(seen[observed].sum(dtype=np.float64))
        self.grade_count += int(observed.sum())

    def warning(self) -> str | None:
        return self.reference.unfamiliar_mean(self.grade_sum / self.grade_count) if self.grade_count else None

    def block(self, data: bytes, block: np.ndarray, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray) -> bytes:
        """The output lines of a block's records, in their order (blank rows left out)."""
        # Blank records (separators and spaces only) are dropped here at numpy speed, whichever path
        # scores the rest: a file of blank lines costs what real rows do, in time and memory.
        content = np.zeros(len(block) + 1, dtype=np.int64)
        np.cumsum(~np.isin(block, self.blank_bytes), out=content[1:])
        kept = content[ends] > content[starts]
        starts, ends, lines = starts[kept], ends[kept], lines[kept]
        if not self.fast:
            return b"".join(self._reference_lines(data, starts, ends, lines))
        simple, cell_starts, cell_ends = self._split(block, starts, ends)
        ok, seen, code, semester, actual = self._questions(block, cell_starts, cell_ends)
        fast = np.flatnonzero(simple)[ok]
        slow = np.flatnonzero(~np.isin(np.arange(len(starts)), fast))
        text, line_ends = (self._fast_lines(block, starts[fast], ends[fast], seen, code, semester, actual)
                           if len(fast) else (b"", np.zeros(1, dtype=np.int64)))
        if not len(slow):
            return text
        # The reference's lines go between the fast lines that come before and after them.
        cuts = line_ends[np.searchsorted(fast, slow)].tolist() + [len(text)]
        parts = [text[:cuts[0]]]
        for k, reference in enumerate(self._reference_lines(data, starts[slow], ends[slow], lines[slow])):
            parts += [reference, text[cuts[k]:cuts[k + 1]]]
        return b"".join(parts)

    def _split(self, block, starts, ends):
        """Which records need nothing but splitting at commas (no quote, CR or NUL, no whitespace at a
        cell's edge, no formula start, as many cells as the header), and where their cells are."""
        width = len(self.columns)
        comma, unusual = block == 44, (block == 34) | (block == 13) | (block == 0)
        edge = np.zeros(len(block) + 2, dtype=bool)
        edge[1:-1] = comma | (block == 10)
        cell_start, cell_end = edge[:-2].copy(), edge[2:].copy()  # a cell's first byte, its last byte
        cell_start[starts[starts < len(block)]] = True
        cell_end[ends[ends > 0] - 1] = True
        unusual |= ((block == 32) | (block == 9)) & (cell_start | cell_end)
        unusual |= cell_start & ((block == 61) | (block == 43) | (block == 45) | (block == 64))  # = + - @
        before_unusual, before_comma = np.zeros(len(block) + 1, np.int32), np.zeros(len(block) + 1, np.int32)
        np.cumsum(unusual, out=before_unusual[1:])  # counts before each byte: per record by subtraction
        np.cumsum(comma, out=before_comma[1:])
        commas, length = before_comma[ends] - before_comma[starts], ends - starts
        simple = ((before_unusual[ends] == before_unusual[starts]) & (commas == width - 1) & (length > width - 1)
                  & (length <= MAX_FAST_LINE))
        rows = np.flatnonzero(simple)
        positions = np.flatnonzero(comma)[before_comma[starts[rows]][:, None] + np.arange(width - 1)]
        return (simple, np.concatenate([starts[rows, None], positions + 1], axis=1),
                np.concatenate([positions, ends[rows, None]], axis=1))

    def _questions(self, block, cell_starts, cell_ends):
        """What the model is asked for each simple record, as Predictor.question asks it; `ok` is
        False where that would be an error (the reference path then writes the message)."""
        seen = np.full((len(cell_starts), self.reference.semesters), np.nan, dtype=np.float32)
        ok = np.ones(len(cell_starts), dtype=bool)
        for column, semester in self.grade_columns:
            value, number, empty = _numbers(block, cell_starts[:, column], cell_ends[:, column])
            ok &= empty | (number & (value >= self.reference.scale.low) & (value <= self.reference.scale.high))
            seen[:, semester] = np.where(number, value, np.nan)
        code, number, _ = _numbers(block, cell_starts[:, self.college], cell_ends[:, self.college])
        observed = ~np.isnan(seen)
        last = last_observed(observed)
        hindcast = (last == seen.shape[1] - 1) | self.hindcast_last_given  # the last grade given is predicted
        ok &= number & (code == np.floor(code)) & observed.any(1) & ~(hindcast & (observed.sum(1) == 1))
        seen, code, last, hindcast = seen[ok], code[ok].astype(np.int64), last[ok], hindcast[ok]
        rows = np.arange(len(seen))
        actual = np.where(hindcast, seen[rows, last].astype(np.float64), np.nan)
        seen[rows[hindcast], last[hindcast]] = np.nan
        return ok, seen, code, np.where(hindcast, last + 1, last + 2), actual

    def _fast_lines(self, block, starts, ends, seen, code, semester, actual) -> tuple[bytes, np.ndarray]:
        """The output lines of records on the fast path, as one bytes, and the offsets [0, end of line 1,
        ..., end of the last line] in it."""
        # float64 as the reference path computes: differences of float32 outputs are exact there
        outputs = {name: [np.asarray(o, dtype=np.float64) for o in backend.predict_batch(seen, code)]
                   for name, backend in self.backends.items()}
        prediction, low, high = served(outputs)
        self.tally.add(prediction, low, high, actual, seen)
        self._count_grades(seen)
        self.rows, self.scored = self.rows + len(seen), self.scored + len(seen)
        missing = np.full(len(seen), np.nan)
        torch, onnx = outputs.get("torch", (missing,))[0], outputs.get("onnx", (missing,))[0]
        difference = np.abs(torch - onnx) if len(outputs) == 2 else missing
        added = [semester.astype("S")] + [format_numbers(v) for v in (
            torch, onnx, difference, low, high, actual, np.abs(actual - prediction))]
        # Each output line is laid out in a byte matrix (NUL-padded pieces), then the NULs dropped:
        # the input has none, so what is left is exactly the lines, with no Python loop per row.
        comma = np.full((len(seen), 1), 44, dtype=np.uint8)
        pieces = [_gather(block, starts, ends)]
        for column in added:
            pieces += [comma, np.ascontiguousarray(column).view(np.uint8).reshape(len(seen), -1)]
        pieces.append(np.tile(np.frombuffer(b",\r\n", dtype=np.uint8), (len(seen), 1)))  # the error column is empty
        matrix = np.concatenate(pieces, axis=1)
        kept = matrix != 0
        return matrix[kept].tobytes(), np.concatenate([[0], np.cumsum(kept.sum(1))])

    def _reference_lines(self, data, starts, ends, lines) -> list[bytes]:
        """Records off the fast path, parsed by the csv module and scored row by row."""
        rows, row_lines, owner = [], [], []
        for k, (start, end, line) in enumerate(zip(starts.tolist(), ends.tolist(), lines.tolist())):
            reader = csv.reader(io.StringIO(data[start:end].decode("utf-8")), delimiter=self.delimiter,
                                skipinitialspace=True, strict=True)
            try:
                parsed = list(reader)
            except csv.Error as error:  # named by the line the reader stopped at, as the table reader does
                raise DataError(f"{self.where}, line {line + reader.line_num - 1}: not a readable CSV ({error})") \
                    from None
            for cells in parsed:
                row = row_cells(cells, len(self.columns), self.where, line, self.delimiter)
                if row is not None:
                    rows.append(row)
                    row_lines.append(line)
                    owner.append(k)
        out = [b""] * len(starts)
        if not rows:
            return out
        scored = score_table(Table(self.columns, rows, row_lines, self.where), self.backends, self.hindcast_last_given)
        self.tally.add(scored.served, scored.low, scored.high, scored.actual, scored.seen)
        self._count_grades(scored.seen[scored.ok])
        self.rows, self.scored = self.rows + len(rows), self.scored + int(scored.ok.sum())
        text = io.StringIO()
        writer = csv.writer(text)
        for k, row in zip(owner, scored.rows()):
            text.seek(0)
            text.truncate()
            writer.writerow(csv_cells(row))
            out[k] += text.getvalue().encode("utf-8")
        return out


def _records(source, where: str, block_bytes: int, digest):
    """(bytes, uint8 view, record starts, record ends, start lines) per block of whole records."""
    pending, line, first = b"", 1, True
    while True:
        chunk = source.read(block_bytes)
        digest.update(chunk)
        if first and chunk.startswith(_BOM):
            chunk = chunk[len(_BOM):]
        first = False
        data = pending + chunk
        if not data:
            return
        block = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(block == 10)
        outside = (np.cumsum(block == 34, dtype=np.uint8) & 1)[newlines] == 0 if len(newlines) else newlines
        boundaries = newlines[outside]
        if chunk and not len(boundaries):
            if len(data) > MAX_RECORD_BYTES:
                raise DataError(f"{where}, line {line}: a record runs past {MAX_RECORD_BYTES // 1024:,} KB "
                                "(a quote that is never closed?)")
            pending = data
            continue
        end = int(boundaries[-1]) + 1 if chunk else len(data)
        pending, data, block = data[end:], data[:end], block[:end]
        if b"\0" in data:
            raise DataError(f"{where}: not a CSV text file (it contains NUL bytes)")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{where}: not a CSV text file (it is not UTF-8 text)") from None
        record_ends = boundaries
        if not chunk and (not len(boundaries) or boundaries[-1] != end - 1):  # a last line with no newline
            record_ends = np.append(boundaries, end)
        starts = np.concatenate([[0], record_ends[:-1] + 1]).astype(np.int64)
        ends = record_ends.astype(np.int64)
        ends -= (ends > starts) & (block[np.maximum(ends - 1, 0)] == 13)  # CRLF files
        lines = line + np.searchsorted(newlines, starts)
        line += int(np.count_nonzero(block == 10))
        yield data, block, starts, ends, lines
        if not chunk:
            return


def _header(data: bytes, starts, ends, where: str) -> tuple[list[str], str]:
    """The header's columns and the file's separator."""
    limits = Limits()
    if not data.strip():
        raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
    if ends[0] - starts[0] > limits.header_chars:
        raise DataError(f"{where}: the header line is longer than {limits.header_chars:,} characters")
    line = data[starts[0]:ends[0]].decode("utf-8")
    delimiter = detect_delimiter(line)
    try:
        header = next(csv.reader(io.StringIO(line), delimiter=delimiter, skipinitialspace=True, strict=True), [])
    except csv.Error as error:
        raise DataError(f"{where}, line 1: not a readable CSV ({error})") from None
    return header_columns(header, where, limits), delimiter


def stream_scored_csv(path: str | Path, out: str | Path, backends: dict[str, Predictor],
                      hindcast_last_given: bool = False, block_bytes: int = BLOCK_BYTES) -> StreamResult:
    """Score the CSV at `path` into `out` (written atomically), block by block."""
    path, where = Path(path), str(path)
    check_input_file(path, where)
    digest, scorer = hashlib.sha256(), None
    with open(path, "rb") as source, atomic_path(out) as temporary, open(temporary, "wb") as sink:
        for data, block, starts, ends, lines in _records(source, where, block_bytes, digest):
            if scorer is None:
                columns, delimiter = _header(data, starts, ends, where)
                scorer = _Scorer(columns, where, backends, hindcast_last_given, delimiter)
                text = io.StringIO()
                csv.writer(text).writerow([spreadsheet_safe(c) for c in columns + list(ADDED_COLUMNS)])
                sink.write(text.getvalue().encode("utf-8"))
                starts, ends, lines = starts[1:], ends[1:], lines[1:]
            if len(starts):
                sink.write(scorer.block(data, block, starts, ends, lines))
        if scorer is None:
            raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
        if scorer.rows == 0:
            raise DataError(f"{where}: the file has a header but no student rows")
    in_sample = digest.hexdigest() == scorer.reference.training_data_sha256
    return StreamResult(scorer.rows, scorer.scored, scorer.tally.summary(in_sample, scorer.served.interval_level),
                        scorer.warning())
