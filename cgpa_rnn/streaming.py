"""`cgpa predict --csv`: a cohort file of any length scored in blocks, in bounded memory.

The file is read by the one reader of the results format (cgpa_rnn.table.CsvRows, Python's csv
module in the dialect training and the demo read) a block of rows at a time, and each block is
scored and written by cgpa_rnn.scoring as a whole file is (score_table, ScoredTable.csv_rows):
the scored file is the one `score_csv` and `write_scored_csv` write, made while it is read.
"""
from __future__ import annotations

import gc
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgpa_rnn.errors import DataError
from cgpa_rnn.predictor import Predictor
from cgpa_rnn.scoring import (
    ADDED_COLUMNS,
    HindcastSummary,
    HindcastTally,
    csv_writer,
    score_table,
    scoring_header,
    served,
)
from cgpa_rnn.table import CsvRows, check_input_file

BLOCK_ROWS = 20_000  # records scored at a time: what a block holds (~80 MB at its peak) stays bounded
READ_BYTES = 1 << 20  # the file is read this much at a time
MAX_LINE_BYTES = 1 << 20  # a line longer than this is an unclosed quote, not a student (and would be held whole)


@dataclass(frozen=True)
class StreamResult:
    rows: int  # student rows written (blank rows are left out, as the table reader does)
    scored: int  # of which scored without an error
    hindcast: HindcastSummary | None
    warning: str | None = None  # the grades are unlike the model's training cohort (Predictor.unfamiliar)


class _Source(io.RawIOBase):
    """The file's bytes as the text reader takes them, fingerprinted (SHA-256) and checked on the way:
    no NUL byte, no line longer than MAX_LINE_BYTES."""

    def __init__(self, handle, where: str):
        super().__init__()
        self.handle, self.where, self.digest = handle, where, hashlib.sha256()
        self.lines, self.run = 0, 0  # newlines so far; bytes since the last one

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.handle.readinto(buffer)
        data = bytes(buffer[:count])
        self.digest.update(data)
        if b"\0" in data:
            raise DataError(f"{self.where}: not a CSV text file (it contains NUL bytes)")
        first = data.find(b"\n")
        if self.run + (count if first < 0 else first) > MAX_LINE_BYTES:  # the line going on from the last read
            raise DataError(f"{self.where}, line {self.lines + 1}: a record runs past {MAX_LINE_BYTES // 1024:,} KB "
                            "(a quote that is never closed?)")
        self.run = self.run + count if first < 0 else count - data.rfind(b"\n") - 1
        self.lines += data.count(b"\n")
        return count


@contextmanager
def _no_cycle_collection():
    """A block holds some 10^5 lists of cells. The cyclic garbage collector would scan them again and again
    (a fifth of the time) though they hold no cycle; reference counting frees them, so it waits till the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def stream_scored_csv(path: str | Path, out: str | Path, backends: dict[str, Predictor],
                      hindcast_last_given: bool = False, block_rows: int = BLOCK_ROWS) -> StreamResult:
    """Score the CSV at `path` into `out` (written atomically), block by block."""
    path, where = Path(path), str(path)
    check_input_file(path, where)
    reference = next(iter(backends.values()))  # as score_table's
    tally, rows, scored_rows, grade_sum, grade_count = HindcastTally(), 0, 0, 0.0, 0
    with open(path, "rb", buffering=0) as handle, _no_cycle_collection():
        source = _Source(handle, where)
        text = io.TextIOWrapper(io.BufferedReader(source, READ_BYTES), encoding="utf-8-sig", newline="\n")
        try:
            reader = CsvRows(text, where)
            scoring_header(reader.columns, where, reference)  # the header's problems before any row, as score_csv
            with csv_writer(out, reader.columns + list(ADDED_COLUMNS)) as writer:
                for block in reader.blocks(block_rows):
                    scored = score_table(block, backends, hindcast_last_given)
                    writer.writerows(scored.csv_rows())
                    tally.add(scored.served, scored.low, scored.high, scored.actual, scored.seen)
                    ok = scored.ok
                    rows, scored_rows = rows + len(ok), scored_rows + int(ok.sum())
                    seen = scored.seen[ok][~np.isnan(scored.seen[ok])]  # Predictor.unfamiliar's grades, summed
                    grade_sum, grade_count = grade_sum + float(seen.sum(dtype=np.float64)), grade_count + len(seen)
                if rows == 0:
                    raise DataError(f"{where}: the file has a header but no student rows")
        except UnicodeDecodeError:
            raise DataError(f"{where}: not a CSV text file (it is not UTF-8 text)") from None
    in_sample = source.digest.hexdigest() == reference.training_data_sha256
    warning = reference.unfamiliar_mean(grade_sum / grade_count) if grade_count else None
    return StreamResult(rows, scored_rows, tally.summary(in_sample, served(backends).interval_level), warning)
