"""`cgpa bench`: torch eager and onnxruntime measured side by side in one run, one thread each.

Figures are ratios taken in the same process on the same inputs, so a noisy shared
machine moves both sides alike. Latency is per call at batch 1 (the demo's path);
throughput is predictions per second at a large batch (the cohort-scoring path).

`cgpa bench RUN --csv N` measures `cgpa predict --csv` itself on a generated file of N
students: the command in its own process, as a user runs it (rows per second, peak
resident memory), beside onnxruntime alone on the same rows.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cgpa_rnn.export.inputs import random_students
from cgpa_rnn.predictor import OnnxPredictor, check_fresh, session_options
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.scoring import number_cells
from cgpa_rnn.values import semester_name

CSV_WRITE_ROWS = 500_000  # the generated file is written in parts of this many rows
ORT_BATCH = 100_000  # onnxruntime alone runs the rows in batches about the size of a streamed block


def _timed(make):
    started = time.perf_counter()
    value = make()
    return value, time.perf_counter() - started


def latency_us(backend, grades, college, calls: int) -> np.ndarray:
    times = np.empty(calls)
    for i in range(calls):
        row = i % len(grades)
        started = time.perf_counter()
        backend.predict_batch(grades[row:row + 1], college[row:row + 1])
        times[i] = time.perf_counter() - started
    return times * 1e6


def throughput(backend, grades, college, seconds: float) -> float:
    backend.predict_batch(grades, college)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        backend.predict_batch(grades, college)
        done += len(grades)
    return done / (time.perf_counter() - started)


def onnx_nodes(path) -> int:
    """Nodes in the graph as stored (onnxruntime fuses a few more when it loads it)."""
    import onnx

    return len(onnx.load(path).graph.node)


class Detail:
    """A predictor's second graph (the why and the rest of the degree) behind the predict_batch the timers call."""

    def __init__(self, predictor):
        self.predictor = predictor

    def predict_batch(self, grades, college):
        return self.predictor.detail_batch(grades, college)


def floor_graph(path) -> bytes:
    """The least a call can cost: one node, model.onnx's inputs, three outputs (a Split of the grades)."""
    import onnx
    from onnx import helper

    inputs = list(onnx.load(path).graph.input)
    outputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in ("a", "b", "c")]
    node = helper.make_node("Split", ["grades"], ["a", "b", "c"], axis=1, num_outputs=3)
    graph = helper.make_graph([node], "floor", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def graph_latency(predictor: OnnxPredictor, grades, college, calls: int, rounds: int = 5) -> dict:
    """model.onnx's own cost per call at batch 1 against the floor's, session.run alone, in alternating
    rounds (the lowest p50 of each kept), so that a busy machine slows both alike."""
    import onnxruntime as ort

    floor = ort.InferenceSession(floor_graph(predictor.path), session_options(), providers=["CPUExecutionProvider"])
    sessions = {"model": predictor.session, "floor": floor}
    best = dict.fromkeys(sessions, float("inf"))
    feeds = [{"grades": grades[i:i + 1], "college": college[i:i + 1]} for i in range(min(calls, len(grades)))]
    for _ in range(rounds):
        for name, session in sessions.items():
            times = np.empty(calls)
            for i in range(calls):
                started = time.perf_counter()
                session.run(None, feeds[i % len(feeds)])
                times[i] = time.perf_counter() - started
            best[name] = min(best[name], float(np.percentile(times, 50)) * 1e6)
    return {"model_p50_us": best["model"], "floor_p50_us": best["floor"], "over_floor": best["model"] / best["floor"]}


def bench(run: str | Path | RunDir, calls: int = 3000, batch: int = 4096, seconds: float = 2.0) -> dict:
    """Measure, refusing an ONNX file that no longer matches the checkpoint (as serving does)."""
    import torch

    from cgpa_rnn.model.torch_predictor import TorchPredictor

    run = RunDir.of(run)
    torch.set_num_threads(1)
    torch_backend, torch_load = _timed(lambda: TorchPredictor(run))
    backends = {"torch": (torch_backend, torch_load, run / RunDir.CHECKPOINT)}
    onnx_backend, onnx_load = _timed(lambda: check_fresh(run, threads=1))
    backends["onnx"] = (onnx_backend, onnx_load, run / RunDir.ONNX)
    if run.exists(RunDir.INT8):
        int8_backend, int8_load = _timed(lambda: OnnxPredictor(run / RunDir.INT8, threads=1))
        backends["onnx_int8"] = (int8_backend, int8_load, run / RunDir.INT8)
    # explain.onnx against torch's explain and trajectory: what the Student tab and the at-risk list run.
    backends["torch_detail"] = (Detail(torch_backend), 0.0, run / RunDir.CHECKPOINT)
    backends["onnx_detail"] = (Detail(onnx_backend), 0.0, run / RunDir.EXPLANATION)
    grades, college = random_students(batch, torch_backend.semesters, torch_backend.colleges, seed=1,
                                      scale=torch_backend.scale)
    report = {"threads": 1, "batch": batch, "calls": calls}
    for name, (backend, load_seconds, path) in backends.items():
        latency_us(backend, grades, college, 200)  # warm-up
        times = latency_us(backend, grades, college, calls)
        report[name] = {"p50_us": float(np.percentile(times, 50)), "p99_us": float(np.percentile(times, 99)),
                        "throughput_per_s": throughput(backend, grades, college, seconds),
                        "load_ms": load_seconds * 1e3, "file_bytes": os.path.getsize(path)}
    report["onnx_bytes"] = report["onnx"]["file_bytes"]
    report["onnx_nodes"] = onnx_nodes(run / RunDir.ONNX)
    report["graph"] = graph_latency(onnx_backend, grades, college, calls)
    report["ratio"] = {"p50_speedup": report["torch"]["p50_us"] / report["onnx"]["p50_us"],
                       "throughput_speedup": report["onnx"]["throughput_per_s"] / report["torch"]["throughput_per_s"],
                       "detail_p50_speedup": report["torch_detail"]["p50_us"] / report["onnx_detail"]["p50_us"]}
    run.write_json(RunDir.BENCH, report)
    return report


def format_bench(report: dict) -> str:
    lines = [f"one thread each; batch-1 latency over {report['calls']} calls; throughput at batch {report['batch']}",
             f"{'backend':<12} {'p50 µs':>9} {'p99 µs':>9} {'pred/s':>12} {'load ms':>9} {'file':>10}"]
    for name in ("torch", "onnx", "onnx_int8", "torch_detail", "onnx_detail"):
        if name in report:
            b = report[name]
            load = f"{b['load_ms']:>9.1f}" if b["load_ms"] else " " * 9  # the detail graphs load with their runtime
            lines.append(f"{name:<12} {b['p50_us']:>9.1f} {b['p99_us']:>9.1f} {b['throughput_per_s']:>12,.0f} "
                         f"{load} {b['file_bytes'] / 1024:>8.1f}KB")
    graph = report["graph"]
    lines.append(f"model.onnx: {report['onnx_nodes']} nodes, {report['onnx_bytes'] / 1024:.1f} KB; session.run alone "
                 f"{graph['model_p50_us']:.1f} µs at batch 1, {graph['over_floor']:.1f}x onnxruntime's per-call floor "
                 f"({graph['floor_p50_us']:.1f} µs: one node, the same inputs, three outputs)")
    ratio = report["ratio"]
    lines.append(f"onnxruntime vs torch eager: {ratio['p50_speedup']:.1f}x faster at batch 1 (p50), "
                 f"{ratio['throughput_speedup']:.1f}x the throughput")
    lines.append(f"*_detail: explain.onnx (the why and the rest of the degree) against torch's: "
                 f"{ratio['detail_p50_speedup']:.1f}x faster at batch 1 (p50)")
    return "\n".join(lines)


def write_cohort_csv(path: Path, grades: np.ndarray, college: np.ndarray) -> None:
    """A results CSV of these students (semester columns, then the college and a roll number)."""
    semesters = grades.shape[1]
    header = ",".join([semester_name(t + 1) for t in range(semesters)] + ["College Code", "Roll"]) + "\n"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(header)
        for start in range(0, len(grades), CSV_WRITE_ROWS):
            part = slice(start, start + CSV_WRITE_ROWS)
            columns = [number_cells(grades[part, t].astype(np.float64)) for t in range(semesters)]
            columns += [college[part].astype(str).tolist(), list(map(str, range(start, start + len(college[part]))))]
            handle.write("\n".join(map(",".join, zip(*columns))) + "\n")


# The command as `python -m cgpa_rnn` runs it, reporting its own peak resident memory (VmHWM) on
# exit: a child's rusage would also count this process's memory at the fork before exec.
_MEASURED_CLI = ("import atexit, sys\n"
                 "from cgpa_rnn.cli import main\n"
                 "report = sys.argv.pop(1)\n"
                 "def peak():\n"
                 "    with open('/proc/self/status') as status, open(report, 'w') as out:\n"
                 "        out.write(next(l for l in status if l.startswith('VmHWM')).split()[1])\n"
                 "atexit.register(peak)\n"
                 "sys.exit(main(sys.argv[1:]))\n")


def _run_measured(arguments: list[str], folder: Path) -> tuple[float, int, int]:
    """Wall seconds, peak resident bytes and exit status of `cgpa ARGUMENTS` in its own process."""
    peak_file = folder / "peak-kb"
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        started = time.perf_counter()
        status = subprocess.run([sys.executable, "-c", _MEASURED_CLI, str(peak_file), *arguments],
                                stdout=out, stderr=err).returncode
        seconds = time.perf_counter() - started
    return seconds, int(peak_file.read_text()) * 1024 if peak_file.is_file() else 0, status


def csv_bench(run: str | Path | RunDir, rows: int, seed: int = 2) -> dict:
    """`cgpa predict --csv` on `rows` generated students, and onnxruntime alone on the same rows."""
    run = RunDir.of(run)
    predictor = check_fresh(run, threads=1)
    grades, college = random_students(rows, predictor.semesters, predictor.colleges, seed=seed, scale=predictor.scale)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "cohort.csv"
        write_cohort_csv(source, grades, college)
        started = time.perf_counter()
        for start in range(0, rows, ORT_BATCH):
            predictor.predict_batch(grades[start:start + ORT_BATCH], college[start:start + ORT_BATCH])
        alone = time.perf_counter() - started
        seconds, peak, status = _run_measured(["predict", str(run), "--csv", str(source), "--out",
                                               str(folder / "scored.csv")], folder)
        if status != 0:
            raise RuntimeError(f"cgpa predict --csv failed: {(folder / 'stderr').read_text()[-500:]}")
        file_bytes = source.stat().st_size
    return {"rows": rows, "file_bytes": file_bytes, "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_rss_bytes": peak, "onnxruntime_seconds": alone, "onnxruntime_rows_per_s": rows / alone}


def format_csv_bench(report: dict) -> str:
    return (f"cgpa predict --csv, {report['rows']:,} rows ({report['file_bytes'] / 1e6:.0f} MB): "
            f"{report['seconds']:.1f} s, {report['rows_per_s']:,.0f} rows/s, peak memory "
            f"{report['peak_rss_bytes'] / 2 ** 20:,.0f} MB\n"
            f"onnxruntime alone on the same rows (one thread, batches of {ORT_BATCH:,}): "
            f"{report['onnxruntime_seconds']:.1f} s, {report['onnxruntime_rows_per_s']:,.0f} rows/s")
