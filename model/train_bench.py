"""`cgpa bench --train`: training's time and peak memory as the cohort grows, side by side.

Each size is trained by the command a user runs, `cgpa train --synthetic N --synthetic-semesters 8`,
in a process of its own into a temporary folder: its wall time is the whole command's (generating
the cohort, fitting the baselines, training, calibrating, measuring on held-out students, writing
the run), and its peak memory is the largest resident size of that process and any it started, as
the kernel reports it when the process is reaped. Nothing here imports torch: the parent stays
small, since its own resident size at the child's start is the least the child can report.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cgpa_rnn.errors import UserError
from cgpa_rnn.processes import end_with_parent

SIZES = (20_000, 200_000, 1_000_000)
SEMESTERS = 8  # a four-year degree of two semesters a year


@dataclass(frozen=True)
class Measured:
    """One size's training, as `cgpa train` ran it and recorded it in metrics.json."""

    students: int
    seconds: float
    peak_bytes: int
    epochs: int
    steps: int
    mae: float  # the model's on the held-out students, target "next"
    baseline_mae: float  # the best baseline's on the same students


def parse_sizes(text: str) -> tuple[int, ...]:
    """"20000,200000" -> (20000, 200000): each a whole number of students, at least 20 (what training needs)."""
    from cgpa_rnn.data.cohort import MIN_STUDENTS

    sizes = []
    for part in text.split(","):
        cleaned = part.strip().replace("_", "")
        if not cleaned.isdigit() or int(cleaned) < MIN_STUDENTS:
            raise UserError(f"--train-sizes: {part.strip()!r} is not a number of students of at least {MIN_STUDENTS}; "
                            "expected e.g. 20000,200000,1000000")
        sizes.append(int(cleaned))
    return tuple(sizes)


def train_bench(sizes: tuple[int, ...] = SIZES, report=lambda line: print(line, file=sys.stderr)) -> list[Measured]:
    """Train each size in its own process, smallest first; `report` hears of each as it starts."""
    results = []
    for students in sorted(sizes):
        report(f"training {students:,} SYNTHETIC students ({SEMESTERS} semesters) in a process of its own...")
        results.append(_measure(students))
    return results


def _measure(students: int) -> Measured:
    with tempfile.TemporaryDirectory(prefix="cgpa-train-bench-") as folder:
        folder = Path(folder)
        command = [sys.executable, "-m", "cgpa_rnn", "train", "--synthetic", str(students), "--synthetic-semesters",
                   str(SEMESTERS), "--out", str(folder / "run"), "--quiet"]
        with open(folder / "output", "wb") as output:
            started = time.perf_counter()
            child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=folder,
                                     preexec_fn=functools.partial(end_with_parent, os.getpid()))  # ends with us
            try:
                _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child and what it reaped
            except BaseException:
                child.kill()
                child.wait()
                raise
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - started
        if child.returncode != 0:
            last = (folder / "output").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"training {students:,} students failed (exit status {child.returncode}): {last[0]}")
        metrics = json.loads((folder / "run" / "metrics.json").read_text())
    scores = metrics["test"]["next"]
    baseline = min(value["mae"] for name, value in scores.items() if name != "model")
    return Measured(students, seconds, usage.ru_maxrss * 1024, metrics["epochs"], metrics["steps"],
                    scores["model"]["mae"], baseline)


def format_train_bench(results: list[Measured]) -> str:
    """The sizes side by side, each with its ratio to the smallest."""
    first = results[0]
    lines = [f"cgpa train --synthetic N --synthetic-semesters {SEMESTERS}, each in its own process "
             f"({os.cpu_count()} cores)",
             f"{'students':>10} {'seconds':>8} {'x':>6} {'peak MB':>8} {'x':>6} {'epochs':>6} {'steps':>6} "
             f"{'MAE next':>9} {'best baseline':>13}"]
    for r in results:
        lines.append(f"{r.students:>10,} {r.seconds:>8.1f} {r.seconds / first.seconds:>6.2f} "
                     f"{r.peak_bytes / 2 ** 20:>8,.0f} {r.peak_bytes / first.peak_bytes:>6.2f} {r.epochs:>6} "
                     f"{r.steps:>6} {r.mae:>9.4f} {r.baseline_mae:>13.4f}")
    lines.append(f"x: the ratio to {first.students:,} students; MAE on the held-out students (target next), "
                 "the best baseline's on the same students beside it")
    return "\n".join(lines)
