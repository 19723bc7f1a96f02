"""`cgpa bench`: torch eager and onnxruntime measured side by side in one run, one thread each.

Figures are ratios taken in the same process on the same inputs, so a noisy shared
machine moves both sides alike. Latency is per call at batch 1 (the demo's path);
throughput is predictions per second at a large batch (the cohort-scoring path).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from cgpa_rnn.data.inputs import random_students
from cgpa_rnn.export.torch_predictor import TorchPredictor
from cgpa_rnn.predictor import OnnxPredictor, check_fresh
from cgpa_rnn.rundir import RunDir


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


def bench(run: str | Path | RunDir, calls: int = 3000, batch: int = 4096, seconds: float = 2.0) -> dict:
    """Measure, refusing an ONNX file that no longer matches the checkpoint (as serving does)."""
    run = RunDir.of(run)
    torch.set_num_threads(1)
    torch_backend, torch_load = _timed(lambda: TorchPredictor(run))
    backends = {"torch": (torch_backend, torch_load, run / RunDir.CHECKPOINT)}
    onnx_backend, onnx_load = _timed(lambda: check_fresh(run, threads=1))
    backends["onnx"] = (onnx_backend, onnx_load, run / RunDir.ONNX)
    if run.exists(RunDir.INT8):
        int8_backend, int8_load = _timed(lambda: OnnxPredictor(run / RunDir.INT8, threads=1))
        backends["onnx_int8"] = (int8_backend, int8_load, run / RunDir.INT8)
    grades, college = random_students(batch, torch_backend.semesters, torch_backend.colleges, seed=1)
    report = {"threads": 1, "batch": batch, "calls": calls}
    for name, (backend, load_seconds, path) in backends.items():
        latency_us(backend, grades, college, 200)  # warm-up
        times = latency_us(backend, grades, college, calls)
        report[name] = {"p50_us": float(np.percentile(times, 50)), "p99_us": float(np.percentile(times, 99)),
                        "throughput_per_s": throughput(backend, grades, college, seconds),
                        "load_ms": load_seconds * 1e3, "file_bytes": os.path.getsize(path)}
    report["onnx_bytes"] = report["onnx"]["file_bytes"]
    report["onnx_nodes"] = onnx_nodes(run / RunDir.ONNX)
    report["ratio"] = {"p50_speedup": report["torch"]["p50_us"] / report["onnx"]["p50_us"],
                       "throughput_speedup": report["onnx"]["throughput_per_s"] / report["torch"]["throughput_per_s"]}
    run.write_json(RunDir.BENCH, report)
    return report


def format_bench(report: dict) -> str:
    lines = [f"one thread each; batch-1 latency over {report['calls']} calls; throughput at batch {report['batch']}",
             f"{'backend':<10} {'p50 µs':>9} {'p99 µs':>9} {'pred/s':>12} {'load ms':>9} {'file':>10}"]
    for name in ("torch", "onnx", "onnx_int8"):
        if name in report:
            b = report[name]
            lines.append(f"{name:<10} {b['p50_us']:>9.1f} {b['p99_us']:>9.1f} {b['throughput_per_s']:>12,.0f} "
                         f"{b['load_ms']:>9.1f} {b['file_bytes'] / 1024:>8.1f}KB")
    lines.append(f"model.onnx: {report['onnx_nodes']} nodes, {report['onnx_bytes'] / 1024:.1f} KB")
    ratio = report["ratio"]
    lines.append(f"onnxruntime vs torch eager: {ratio['p50_speedup']:.1f}x faster at batch 1 (p50), "
                 f"{ratio['throughput_speedup']:.1f}x the throughput")
    return "\n".join(lines)
