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
import operator
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress, islice
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
    cells: list[Sequence[str]] | None = field(default=None, repr=False, compare=False)  # see column_cells()

    def __len__(self) -> int:
        return len(self.rows)

    def column_cells(self) -> list[Sequence[str]]:
        """The cells a column at a time (the rows transposed once; the reader hands over its own)."""
        if self.cells is None:
            self.cells = list(zip(*self.rows)) if self.rows else [()] * len(self.columns)
        return self.cells

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


class CsvRows:
    """A CSV's header, then its student rows in blocks: the one reader of the results format, whether a
    file is read whole (training, an upload) or streamed (`cgpa predict --csv`).

    `lines` yields the text's lines, each ending in "\n" (io.StringIO, or a file opened with
    newline="\n"): a CR ends a line only before a LF, and a stray one is an unreadable CSV.
    A row's cells are stripped, a short row is padded to the header's width, a blank row is left
    out. The limits are checked as they are reached, so an oversized input costs what the limit
    allows, not what it holds. The rules work on a block's cells a column at a time."""

    def __init__(self, lines: Iterator[str], where: str, limits: Limits = Limits()):
        first = next(lines, "")
        if first.find("\n", 0, limits.header_chars + 1) < 0 and len(first) > limits.header_chars:
            raise DataError(f"{where}: the header line is longer than {limits.header_chars:,} characters "
                            f"(it starts {preview(first)})")
        # A blank first line is no header: the lines after it are only looked at for a file of nothing else.
        if not first.strip(WHITESPACE) and not any(line.strip(WHITESPACE) for line in lines):
            raise DataError(f"{where}: the file is empty (expected a header row and one row per student)")
        self.where, self.limits, self.delimiter = where, limits, detect_delimiter(first)
        self._reader = csv.reader(chain([first], lines), delimiter=self.delimiter, skipinitialspace=True,
                                  strict=True)
        try:
            self.columns = header_columns(next(self._reader, None), where, limits)
        except csv.Error as error:
            raise self._unreadable(error) from None

    def _unreadable(self, error: csv.Error) -> DataError:
        return DataError(f"{self.where}, line {self._reader.line_num}: not a readable CSV ({error})")

    def blocks(self, size: int | None = None) -> Iterator[Table]:
        """Tables of the rows of `size` records at a time (None: all)."""
        most, read = self.limits.rows, 0
        while True:
            # Blank lines count against the row limit (skipping them is work too, and a file of nothing else
            # would be free): one record past it is refused before any other is read.
            take = size if most is None else min(size or most + 1, most + 1 - read)
            first, records, failure = self._reader.line_num + 1, [], None
            try:
                records.extend(islice(self._reader, take))
            except csv.Error as error:  # reported after the records before it, whose own problems come first
                failure = self._unreadable(error)
            read += len(records)
            lines = _starts(records, first, None if failure else self._reader.line_num - first + 1)
            cells, lines = self._cells(records, lines)
            if failure:
                raise failure
            if lines:
                yield Table(self.columns, list(map(list, zip(*cells))), lines, self.where, delimiter=self.delimiter,
                            cells=cells)
            if take is None or len(records) < take:
                return

    def _cells(self, records: list[list[str]], lines: list[int]) -> tuple[list[Sequence[str]], list[int]]:
        """The records' cells a column at a time, and their lines, blank rows left out; the first record over
        the row limit or with more cells than the header is refused."""
        width, most = len(self.columns), self.limits.rows
        over = len(records) if most is None else bisect_right(lines, most + 1)
        for k in compress(range(len(records)), map(width.__ne__, map(len, records))):  # a short row, a blank line...
            record = records[k]
            if len(record) < width:
                record += [""] * (width - len(record))
            elif any(c.strip(WHITESPACE) for c in record) and k < over:
                raise DataError(f"{self.where}, line {lines[k]}: {len(record)} cells but the header has {width} "
                                "columns")
        if over < len(records):
            raise DataError(f"{self.where}: more than {most:,} rows (blank lines count too) is over the limit")
        columns = [_stripped(cells) for cells in zip(*records)]  # a longer record is blank: its extra cells go
        if self.delimiter == ";":
            columns = [_decimal_points(cells) for cells in columns]
        blank = range(len(records))  # the records with no cell yet that holds something
        for cells in columns:
            blank = list(compress(blank, map(operator.not_, map(cells.__getitem__, blank))))
            if not blank:
                return columns, lines
        keep = [True] * len(records)
        for k in blank:
            keep[k] = False
        return [list(compress(cells, keep)) for cells in columns], list(compress(lines, keep))


def _starts(records: list[list[str]], first: int, lines_read: int | None) -> list[int]:
    """The line each record starts on: one line each, unless a quoted cell holds a line break."""
    if lines_read == len(records):
        return list(range(first, first + len(records)))
    return list(accumulate((1 + sum(c.count("\n") for c in record) for record in records), initial=first))[:-1]


def _stripped(cells: tuple[str, ...]):
    """The cells without whitespace at either end. A few searches of the joined column tell whether any
    has some, so most columns are kept as they are."""
    joined = "\0" + "\0".join(cells) + "\0"
    if any("\0" + space in joined or space + "\0" in joined for space in WHITESPACE):
        return [c.strip(WHITESPACE) for c in cells]
    return cells


def _decimal_points(cells):
    """A semicolon-separated file's decimal commas (`12,5`) as points."""
    if "," not in "\0".join(cells):
        return cells
    return [c.replace(",", ".") if _DECIMAL_COMMA.fullmatch(c) else c for c in cells]


def parse_table(text: str, where: str, limits: Limits = Limits()) -> Table:
    """The whole text as one table."""
    reader = CsvRows(io.StringIO(text), where, limits)
    return next(reader.blocks(), Table(reader.columns, [], [], where, delimiter=reader.delimiter))


def read_table(path: str | Path, limits: Limits = Limits(), name: str | None = None) -> Table:
    """A CSV file; its SHA-256 is kept as the data's fingerprint. Messages call it `name`
    (default: the path), so a server can name an upload without showing where it keeps it."""
    path, where = Path(path), name or str(path)
    check_input_file(path, where)
    size = path.stat().st_size
    if limits.bytes is not None and size > limits.bytes:
        raise DataError(f"{where}: {size / 1024:,.0f} KB is over the {limits.bytes // 1024:,} KB limit")
    raw = path.read_bytes()
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
