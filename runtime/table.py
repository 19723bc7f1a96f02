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

from runtime.errors import DataError


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]  # one per student, as wide as the header
    lines: list[int]  # the file line each row starts on (the header is line 1)
    where: str  # how messages name the table: a file name, "upload", ...
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[str]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def records(self):
        """(line, {column: cell}) per row."""
        for line, row in zip(self.lines, self.rows):
            yield line, dict(zip(self.columns, row))


def table_from_rows(columns: list[str], rows: list[list[str]], where: str) -> Table:
    return Table([str(c).strip() for c in columns], [[str(v).strip() for v in row] for row in rows],
                 list(range(2, len(rows) + 2)), where)


def parse_table(text: str, where: str) -> Table:
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
        columns = [c.strip() for c in header]
        rows, lines = [], []
        start = reader.line_num + 1
        for cells in reader:
            if any(c.strip() for c in cells):
                if len(cells) > len(columns):
                    raise DataError(f"{where}, line {start}: {len(cells)} cells but the header has {len(columns)} "
                                    "columns")
                rows.append([c.strip() for c in cells] + [""] * (len(columns) - len(cells)))
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{where}, line {reader.line_num}: not a readable CSV ({error})") from None
    return Table(columns, rows, lines, where)


def read_table(path: str | Path) -> Table:
    """A CSV file; its SHA-256 is kept as the data's fingerprint."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a CSV of semester results)")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (expected a header row and one row per student)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a CSV text file (it is not UTF-8 text)") from None
    if "\0" in text:
        raise DataError(f"{path}: not a CSV text file (it contains NUL bytes)")
    table = parse_table(text, str(path))
    table.sha256 = hashlib.sha256(raw).hexdigest()
    return table
