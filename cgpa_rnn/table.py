"""A CSV file as a table of stripped strings, read with the standard library alone.

The one reader of the results format: the training cohort and batch scoring both start
here, so a file means the same to both. Every problem is a DataError naming the file
and line.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from cgpa_rnn.errors import DataError
from cgpa_rnn.values import WHITESPACE, preview


@dataclass(frozen=True)
class Limits:
    """What a reader accepts, checked before the work they bound (None: no limit)."""

    bytes: int | None = None
    rows: int | None = None
    columns: int = 1000
    header_chars: int = 20_000


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]  # one per student, as wide as the header
    lines: list[int]  # the file line each row starts on (the header is line 1)
    where: str  # how messages name the table: a file name, "upload", ...
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.rows)

    def records(self):
        """(line, {column: cell}) per row."""
        for line, row in zip(self.lines, self.rows):
            yield line, dict(zip(self.columns, row))


def table_from_rows(columns: list[str], rows: list[list[str]], where: str) -> Table:
    return Table([str(c).strip(WHITESPACE) for c in columns], [[str(v).strip(WHITESPACE) for v in row] for row in rows],
                 list(range(2, len(rows) + 2)), where)


def check_input_file(path: Path, where: str) -> None:
    """Refuse what is not a regular file, saying what it is instead."""
    if path.is_file():
        return
    if not path.exists():
        raise DataError(f"{where}: no such file (expected a CSV of semester results)")
    kind = "a folder" if path.is_dir() else "not a regular file (a pipe or a device)"
    raise DataError(f"{where}: {kind}; expected a CSV file of semester results")


def header_columns(header: list[str] | None, where: str, limits: Limits) -> list[str]:
    """The stripped column names of a parsed header row (None or empty: an empty file)."""
    if not header:
        raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
    if len(header) > limits.columns:
        raise DataError(f"{where}: {len(header):,} columns is over the {limits.columns}-column limit")
    return [c.strip(WHITESPACE) for c in header]


def row_cells(cells: list[str], columns: int, where: str, line: int) -> list[str] | None:
    """A parsed row's stripped cells, padded to the header's width; None for a blank row."""
    if not any(c.strip(WHITESPACE) for c in cells):
        return None
    if len(cells) > columns:
        raise DataError(f"{where}, line {line}: {len(cells)} cells but the header has {columns} columns")
    return [c.strip(WHITESPACE) for c in cells] + [""] * (columns - len(cells))


def parse_table(text: str, where: str, limits: Limits = Limits()) -> Table:
    """Rows are read one at a time and the limits checked as they are reached, so an
    oversized input costs what the limit allows, not what it holds."""
    newline = text.find("\n", 0, limits.header_chars + 1)
    if newline < 0 and len(text) > limits.header_chars:
        raise DataError(f"{where}: the header line is longer than {limits.header_chars:,} characters "
                        f"(it starts {preview(text)})")
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    try:
        columns = header_columns(next(reader, None), where, limits)
        rows, lines = [], []
        start = reader.line_num + 1
        for cells in reader:
            row = row_cells(cells, len(columns), where, start)
            if row is not None:
                if limits.rows is not None and len(rows) == limits.rows:
                    raise DataError(f"{where}: more than {limits.rows:,} student rows is over the limit")
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{where}, line {reader.line_num}: not a readable CSV ({error})") from None
    return Table(columns, rows, lines, where)


def read_table(path: str | Path, limits: Limits = Limits(), name: str | None = None) -> Table:
    """A CSV file; its SHA-256 is kept as the data's fingerprint. Messages call it `name`
    (default: the path), so a server can name an upload without showing where it keeps it."""
    path, where = Path(path), name or str(path)
    check_input_file(path, where)
    size = path.stat().st_size
    if limits.bytes is not None and size > limits.bytes:
        raise DataError(f"{where}: {size / 1024:,.0f} KB is over the {limits.bytes // 1024:,} KB limit")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{where}: not a CSV text file (it is not UTF-8 text)") from None
    if "\0" in text:
        raise DataError(f"{where}: not a CSV text file (it contains NUL bytes)")
    table = parse_table(text, where, limits)
    table.sha256 = hashlib.sha256(raw).hexdigest()
    return table
