"""`cgpa bench RUN --demo`: the demo measured as its visitors meet it, over raw HTTP.

The app runs as it is deployed, in its own process (`cgpa demo RUN --port P`), so the
measuring client does not share its interpreter. A prediction is Gradio's two-request call
(POST /gradio_api/call/predict, then GET its event stream until "complete"). Like a browser
tab or gradio_client, a visitor keeps one session for all its calls: Gradio builds a
session's state on its first call, so first calls are reported apart from later ones.
Sequential calls reuse one keep-alive connection (p50/p95); then 40 visitors ask at once,
each on its own connection: once as new visitors, once again with their sessions open.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cgpa_rnn.errors import UserError
from cgpa_rnn.predictor import check_fresh

STUDENT = ["7.1", "6.8", "", "7.3", ""]
START_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Visitor:
    """One client: its own keep-alive connection and Gradio session."""

    def __init__(self, port: int, values: list):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.body = json.dumps({"data": values, "session_hash": uuid.uuid4().hex})

    def predict(self) -> float:
        """One prediction; its wall time in ms, raising if it was not answered."""
        started = time.perf_counter()
        self.connection.request("POST", "/gradio_api/call/predict", self.body, {"Content-Type": "application/json"})
        event = json.loads(self.connection.getresponse().read())["event_id"]
        self.connection.request("GET", f"/gradio_api/call/predict/{event}")
        stream = self.connection.getresponse().read().decode()
        if "event: complete" not in stream:
            raise RuntimeError(f"not answered: {stream[:200]}")
        return (time.perf_counter() - started) * 1e3


def _start_server(run: Path, port: int) -> subprocess.Popen:
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "cgpa_rnn", "demo", str(run), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
                              cwd=Path(__file__).resolve().parent.parent)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", "/gradio_api/info")
            if probe.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise UserError(f"the demo did not start on port {port}: {server.communicate()[1].decode()[-500:]}")


def _at_once(visitors: list[Visitor]) -> list[float]:
    """Every visitor asks at the same moment; the waits of those answered."""
    start = threading.Barrier(len(visitors))

    def ask(visitor: Visitor):
        start.wait()
        try:
            return visitor.predict()
        except Exception:  # a refused or failed request counts as not answered
            return None

    with ThreadPoolExecutor(len(visitors)) as pool:
        return [w for w in pool.map(ask, visitors) if w is not None]


def _summary(waits: list[float]) -> dict:
    return {"answered": len(waits), "median_ms": float(np.median(waits)) if waits else float("nan"),
            "max_ms": float(max(waits)) if waits else float("nan")}


def demo_bench(run: str | Path, calls: int = 200, clients: int = 40) -> dict:
    model = check_fresh(run)  # refuse a stale model before starting anything
    values = STUDENT[:model.semesters] + [""] * (model.semesters - len(STUDENT)) + [str(model.colleges[0]), False]
    port = _free_port()
    server = _start_server(Path(run).resolve(), port)
    try:
        one = Visitor(port, values)
        for _ in range(10):  # warm-up of the server's own paths
            one.predict()
        sequential = np.array([one.predict() for _ in range(calls)])
        visitors = [Visitor(port, values) for _ in range(clients)]
        new = _at_once(visitors)
        returning = _at_once(visitors)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"calls": calls, "p50_ms": float(np.percentile(sequential, 50)),
            "p95_ms": float(np.percentile(sequential, 95)), "clients": clients,
            "new_visitors": _summary(new), "returning_visitors": _summary(returning)}


def format_demo_bench(report: dict) -> str:
    lines = ["demo over raw HTTP, server in its own process (POST + event stream per prediction):",
             f"  one visitor, {report['calls']} calls on one keep-alive connection: p50 {report['p50_ms']:.1f} ms, "
             f"p95 {report['p95_ms']:.1f} ms"]
    for key, what in (("new_visitors", "first call of each"), ("returning_visitors", "sessions already open")):
        part = report[key]
        lines.append(f"  {report['clients']} visitors at once ({what}): {part['answered']} answered, median "
                     f"{part['median_ms']:.0f} ms, max {part['max_ms']:.0f} ms")
    return "\n".join(lines)
