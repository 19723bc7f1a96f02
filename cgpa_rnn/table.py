"""A CSV file as a table of stripped strings, read with the standard library alone.

The one reader of the results format: the training cohort and batch scoring both start
here, so a file means the same to both. Every problem is a DataError naming the file
and line.

Registrars and spreadsheets write more than one dialect, so the separator is detected from
the header line: comma, semicolon or tab, whichever occurs most outside quotes (a comma on a
tie). Quoted values are unquoted. In a semicolon-separated file a number with a decimal
comma (`12,5`) is read as `12.5`, as the spreadsheets that write such files mean it. The
static page (export/web/rules.js) applies the same rules; shared fixtures keep them equal.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
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


DELIMITERS = (",", ";", "\t")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+")


def detect_delimiter(header_line: str) -> str:
    """The separator that occurs most often outside quotes in the header line (comma on a tie)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return max(DELIMITERS, key=lambda d: (counts[d], d == ","))


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]  # one per student, as wide as the header
    lines: list[int]  # the file line each row starts on (the header is line 1)
    where: str  # how messages name the table: a file name, "upload", ...
    sha256: str = ""
    delimiter: str = ","

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


def row_cells(cells: list[str], columns: int, where: str, line: int, delimiter: str = ",") -> list[str] | None:
    """A parsed row's stripped cells, padded to the header's width; None for a blank row."""
    if not any(c.strip(WHITESPACE) for c in cells):
        return None
    if len(cells) > columns:
        raise DataError(f"{where}, line {line}: {len(cells)} cells but the header has {columns} columns")
    stripped = [c.strip(WHITESPACE) for c in cells]
    if delimiter == ";":
        stripped = [c.replace(",", ".") if _DECIMAL_COMMA.fullmatch(c) else c for c in stripped]
    return stripped + [""] * (columns - len(cells))


def parse_table(text: str, where: str, limits: Limits = Limits()) -> Table:
    """Rows are read one at a time and the limits checked as they are reached, so an
    oversized input costs what the limit allows, not what it holds."""
    newline = text.find("\n", 0, limits.header_chars + 1)
    if newline < 0 and len(text) > limits.header_chars:
        raise DataError(f"{where}: the header line is longer than {limits.header_chars:,} characters "
                        f"(it starts {preview(text)})")
    delimiter = detect_delimiter(text[:newline] if newline >= 0 else text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True, strict=True)
    try:
        columns = header_columns(next(reader, None), where, limits)
        rows, lines = [], []
        start = reader.line_num + 1
        for cells in reader:
            # Blank lines count: skipping them is work too, and a file of nothing else would be free.
            if limits.rows is not None and start - 1 > limits.rows:
                raise DataError(f"{where}: more than {limits.rows:,} rows (blank lines count too) is over the limit")
            row = row_cells(cells, len(columns), where, start, delimiter)
            if row is not None:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{where}, line {reader.line_num}: not a readable CSV ({error})") from None
    return Table(columns, rows, lines, where, delimiter=delimiter)


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


@dataclass(frozen=True)
class LongLayout:
    """A file with one row per student and term (`--long STUDENT,TERM,GRADE`): the three column names."""

    student: str
    term: str
    grade: str

    @classmethod
    def parse(cls, text: str, option: str = "--long") -> LongLayout:
        names = [n.strip(WHITESPACE) for n in str(text).split(",")]
        if len(names) != 3 or not all(names) or len(set(names)) != 3:
            raise DataError(f"{option}: expected three different column names STUDENT,TERM,GRADE, got "
                            f"{preview(text)}")
        return cls(*names)


def widen(table: Table, layout: LongLayout, terms: list[str] | None = None) -> tuple[Table, list[str]]:
    """One row per student and term -> one row per student with a column per term, and the terms
    in order. Columns: the student column, the other columns (each must hold one value per
    student), then the terms: in `terms` order when given, else by the semester number in their
    names when every term has one, else in the order they first appear in the file."""
    from cgpa_rnn.values import semester_number

    where = table.where
    missing = [n for n in (layout.student, layout.term, layout.grade) if n not in table.columns]
    if missing:
        raise DataError(f"{where}: --long names column(s) {', '.join(map(preview, missing))} that are not in the "
                        f"header {table.columns[:8]}")
    others = [c for c in table.columns if c not in (layout.student, layout.term, layout.grade)]
    students: dict[str, dict] = {}
    order: list[str] = []
    for line, record in table.records():
        student, term = record[layout.student], record[layout.term]
        if not student or not term:
            raise DataError(f"{where}, line {line}: a blank {preview(layout.student if not student else layout.term)}; "
                            "every row of a long file names its student and term")
        entry = students.setdefault(student, {"line": line, "grades": {}, "lines": {},
                                              "others": {c: record[c] for c in others}})
        if term in entry["grades"]:
            raise DataError(f"{where}, line {line}: student {preview(student)} has term {preview(term)} twice "
                            f"(first on line {entry['lines'][term]}); keep one row per student and term")
        for column in others:
            if record[column] != entry["others"][column]:
                raise DataError(f"{where}, line {line}: student {preview(student)} has {preview(column)} "
                                f"{preview(record[column])} here but {preview(entry['others'][column])} on line "
                                f"{entry['line']}; a long file's other columns hold one value per student")
        entry["grades"][term], entry["lines"][term] = record[layout.grade], line
        if term not in order:
            order.append(term)
    if terms:
        unknown = sorted(set(order) - set(terms))
        if unknown:
            raise DataError(f"{where}: term(s) {', '.join(map(preview, unknown[:5]))} are not among --semesters "
                            f"{', '.join(terms)}")
        order = list(terms)
    elif all(semester_number(t) is not None for t in order):
        order.sort(key=semester_number)
    columns = [layout.student, *others, *order]
    rows = [[name, *(entry["others"][c] for c in others), *(entry["grades"].get(t, "") for t in order)]
            for name, entry in students.items()]
    return Table(columns, rows, [entry["line"] for entry in students.values()], where, table.sha256,
                 table.delimiter), order
