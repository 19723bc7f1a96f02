"""`cgpa bench RUN --demo`: the demo measured as its visitors meet it, over raw HTTP.

The app is started on a free loopback port; a prediction is Gradio's two-request call
(POST /gradio_api/call/predict, then GET its event stream until "complete"). Sequential
calls reuse one keep-alive connection (p50/p95); then 40 clients ask at once, each on its
own connection, and the median and maximum wait are reported with how many were answered.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from demo import service
from demo.app import build_demo, launch

STUDENT = ["7.1", "6.8", "", "7.3", ""]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _predict(connection: http.client.HTTPConnection, values: list) -> float:
    """One prediction over HTTP; returns its wall time in ms, raising if it was not answered."""
    started = time.perf_counter()
    connection.request("POST", "/gradio_api/call/predict", json.dumps({"data": values}),
                       {"Content-Type": "application/json"})
    event = json.loads(connection.getresponse().read())["event_id"]
    connection.request("GET", f"/gradio_api/call/predict/{event}")
    stream = connection.getresponse().read().decode()
    if "event: complete" not in stream:
        raise RuntimeError(f"not answered: {stream[:200]}")
    return (time.perf_counter() - started) * 1e3


def demo_bench(run: str | Path, calls: int = 200, clients: int = 40) -> dict:
    backends = service.load_backends(run)
    values = STUDENT[:backends.semesters] + [""] * (backends.semesters - len(STUDENT)) + [str(backends.colleges[0])]
    port = _free_port()
    demo = build_demo(backends)
    launch(demo, server_name="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(10):  # warm-up of the server's own paths
            _predict(connection, values)
        sequential = np.array([_predict(connection, values) for _ in range(calls)])
        start = threading.Barrier(clients)

        def one_client(_):
            own = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            start.wait()
            try:
                return _predict(own, values)
            except Exception:  # a refused or failed request counts as not answered
                return None

        with ThreadPoolExecutor(clients) as pool:
            waits = [w for w in pool.map(one_client, range(clients)) if w is not None]
    finally:
        demo.close()
    return {"calls": calls, "p50_ms": float(np.percentile(sequential, 50)),
            "p95_ms": float(np.percentile(sequential, 95)), "clients": clients, "answered": len(waits),
            "concurrent_median_ms": float(np.median(waits)) if waits else float("nan"),
            "concurrent_max_ms": float(max(waits)) if waits else float("nan")}


def format_demo_bench(report: dict) -> str:
    return (f"demo over raw HTTP (POST + event stream per prediction, one keep-alive connection):\n"
            f"  sequential {report['calls']} calls: p50 {report['p50_ms']:.1f} ms, p95 {report['p95_ms']:.1f} ms\n"
            f"  {report['clients']} clients at once: {report['answered']} answered, median "
            f"{report['concurrent_median_ms']:.0f} ms, max {report['concurrent_max_ms']:.0f} ms")
