"""`cgpa bench RUN --demo`: the demo measured as its visitors meet it, over raw HTTP.

The app runs as it is deployed, in its own process (`cgpa demo RUN --port P`), so the
measuring client does not share its interpreter. A prediction is Gradio's two-request call
(POST /gradio_api/call/predict, then GET its event stream until "complete"). Like a browser
tab or gradio_client, a visitor keeps one session for all its calls: Gradio builds a
session's state on its first call, so first calls are reported apart from later ones.
Sequential calls reuse one keep-alive connection (p50/p95); then 40 visitors ask at once,
each on its own connection from its own address: once as new visitors, once again with their
sessions open.
The server's CPU time (from /proc) gives its cost per call and per new session.

Then what a hostile client can do: 20 oversized request bodies (the server's memory before
and after), and 70 training requests at once, each from a visitor of its own, while one visitor
keeps asking for predictions (how many trainings run, wait or are refused; whether every
prediction is answered). Last, one client floods each door in turn from its own address
(127.0.0.2: loopback has many), every worker sending again as soon as it is answered, while
a visitor on 127.0.0.1 predicts: API calls (read, and never read: each one left waiting in
the queue), uploads, and where the [mcp] extra is installed MCP tool calls and event
streams; the visitor's latency, what the flood was answered, and the server's folder and
memory after each.
"""
from __future__ import annotations

import functools
import glob
import http.client
import importlib.util
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cgpa_rnn.errors import UserError
from cgpa_rnn.port import free_port
from cgpa_rnn.predictor import check_fresh
from cgpa_rnn.processes import end_with_parent

STUDENT = ["7.1", "6.8", "", "7.3", ""]
START_SECONDS = 120
OVERSIZED_BYTES = 50 * 1024 * 1024  # declared by each oversized request
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Visitor:
    """One client: its own keep-alive connection and Gradio session, from `address` (visitors on
    the internet come from addresses of their own, each with its own share: demo/fairness.py)."""

    def __init__(self, port: int, values: list, address: str = "127.0.0.1"):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120, source_address=(address, 0))
        self.body = json.dumps({"data": values, "session_hash": uuid.uuid4().hex})

    def _exchange(self, method: str, path: str, body: str | None = None) -> bytes:
        """One request and its answer. The server closes a keep-alive connection left idle for seconds
        (as uvicorn does after 5), which a client sees when it next sends or waits for an answer; a
        browser opens a new one and sends again, and so does this client, once."""
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body, {"Content-Type": "application/json"} if body else {})
                return self.connection.getresponse().read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.connection.close()
                if attempt == 2:
                    raise

    def predict(self) -> float:
        """One prediction; its wall time in ms, raising if it was not answered."""
        started = time.perf_counter()
        event = json.loads(self._exchange("POST", "/gradio_api/call/predict", self.body))["event_id"]
        stream = self._exchange("GET", f"/gradio_api/call/predict/{event}").decode()
        if "event: complete" not in stream:
            raise RuntimeError(f"not answered: {stream[:200]}")
        return (time.perf_counter() - started) * 1e3


def _start_server(run: Path, port: int) -> subprocess.Popen:
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    environment.pop("GRADIO_TEMP_DIR", None)  # the server makes its own private folder
    mcp = ["--mcp"] if importlib.util.find_spec("mcp") else []
    server = subprocess.Popen([sys.executable, "-m", "cgpa_rnn", "demo", str(run), "--port", str(port), *mcp],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
                              cwd=Path(__file__).resolve().parent.parent,
                              preexec_fn=functools.partial(end_with_parent, os.getpid()))  # ends with the bench
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
        except (OSError, RuntimeError, ValueError, KeyError):  # refused or failed: not answered
            return None

    with ThreadPoolExecutor(len(visitors)) as pool:
        return [w for w in pool.map(ask, visitors) if w is not None]


def _summary(waits: list[float]) -> dict:
    return {"answered": len(waits), "median_ms": float(np.median(waits)) if waits else float("nan"),
            "max_ms": float(max(waits)) if waits else float("nan")}


def _oversized(port: int) -> int:
    """A prediction call whose JSON body is OVERSIZED_BYTES long, sent unless the server answers
    first; the status answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(f"POST /gradio_api/call/predict_json HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                           f"application/json\r\nContent-Length: {OVERSIZED_BYTES}\r\n\r\n".encode())
        ready, _, _ = select.select([connection], [], [], 0.5)
        if not ready:  # not refused on sight: the server reads the body
            chunk = b"7" * (1024 * 1024)
            try:
                connection.sendall(b'{"data": ["')
                for _ in range(OVERSIZED_BYTES // len(chunk) - 1):
                    connection.sendall(chunk)
                connection.sendall(b"7" * (len(chunk) - 13) + b'"]}')
            except OSError:
                pass
        try:
            answer = connection.recv(200).decode(errors="replace")
        except OSError:
            return 0
    return int(answer.split()[1]) if answer.startswith("HTTP/") else 0


def upload(port: int, path: Path) -> str:
    body = (b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + path.name.encode()
            + b"\"\r\nContent-Type: text/csv\r\n\r\n" + path.read_bytes() + b"\r\n--x--\r\n")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/gradio_api/upload", body, {"Content-Type": "multipart/form-data; boundary=x"})
    return json.loads(connection.getresponse().read())[0]


def training_outcome(port: int, uploaded: str, seconds: float, visitor: int = 0) -> str:
    """One training request as a new session of its own visitor (a loopback address of its own,
    127.0.0.<10 + visitor>): 'refused: <reason>', or 'accepted' if it is still running or waiting
    after `seconds` (or finished)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds,
                                            source_address=(f"127.0.0.{10 + visitor}", 0))
    data = [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}]
    connection.request("POST", "/gradio_api/call/train_own", json.dumps({"data": data}),
                       {"Content-Type": "application/json"})
    answer = connection.getresponse()
    if answer.status != 200:
        return f"refused: HTTP {answer.status}"
    event = json.loads(answer.read())["event_id"]
    connection.request("GET", f"/gradio_api/call/train_own/{event}")
    stream, deadline = connection.getresponse(), time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            line = stream.readline().decode()
            if line.startswith("event: error"):
                data = json.loads(stream.readline().decode().removeprefix("data: ") or "null")
                return f"refused: {data.get('error') if isinstance(data, dict) else data}"
            if not line or line.startswith("event: complete"):
                return "accepted"
    except OSError:  # the socket's timeout: still waiting or running when the time was up
        return "accepted"
    return "accepted"  # the deadline passed while it kept reporting progress


def hostile_bench(port: int, pid: int, values: list) -> dict:
    rss_before = _rss_mb(pid)
    statuses = [_oversized(port) for _ in range(20)]
    rss_after = _rss_mb(pid)
    from cgpa_rnn.data import SHIPPED_DATA

    uploaded = upload(port, SHIPPED_DATA)
    with ThreadPoolExecutor(70) as pool:
        trainings = [pool.submit(training_outcome, port, uploaded, 20, k) for k in range(70)]
        time.sleep(2)  # the requests have arrived; a visitor now asks as usual
        visitor = Visitor(port, values)
        waits = []
        for _ in range(20):
            try:
                waits.append(visitor.predict())
            except (OSError, RuntimeError, ValueError, KeyError):
                waits.append(None)  # not answered
        outcomes = [t.result() for t in trainings]
    refusals = sorted({o for o in outcomes if o.startswith("refused")})
    answered = [w for w in waits if w is not None]
    return {"oversized_statuses": sorted(set(statuses)), "rss_before_mb": rss_before, "rss_after_mb": rss_after,
            "trainings_accepted": outcomes.count("accepted"), "trainings_refused": len(outcomes) - outcomes.count(
                "accepted"), "refusal_reasons": refusals, "predictions_answered": len(answered),
            "prediction_median_ms": float(np.median(answered)) if answered else float("nan")}


FLOOD_SECONDS, FLOOD_WORKERS, FLOODER = 10, 50, "127.0.0.2"


def _flood_request(connection: http.client.HTTPConnection, door: str, values: list, k: int) -> int:
    """One request of a flood on `door`; its status."""
    if door in ("api", "api-unread"):  # api-unread: calls whose answers are never read, each held in the queue
        connection.request("POST", "/gradio_api/call/predict_json", json.dumps({"data": values}),
                           {"content-type": "application/json"})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status == 200 and door == "api":
            connection.request("GET", f"/gradio_api/call/predict_json/{json.loads(body)['event_id']}")
            connection.getresponse().read()
        return answer.status
    if door == "mcp":
        arguments = dict(zip(("semester_1st", "semester_2nd"), values[:2]), college=values[-2])
        connection.request("POST", "/gradio_api/mcp/", json.dumps({"jsonrpc": "2.0", "id": k, "method": "tools/call",
                           "params": {"name": "predict_student", "arguments": arguments}}),
                           {"content-type": "application/json", "accept": "application/json, text/event-stream"})
    elif door == "upload":
        body = (f'--x\r\nContent-Disposition: form-data; name="files"; filename="f{k}.csv"\r\n\r\n'.encode()
                + b"7" * 2_000_000 + b"\r\n--x--\r\n")
        connection.request("POST", "/gradio_api/upload", body, {"content-type": "multipart/form-data; boundary=x"})
    else:  # an event stream, held open for the rest of the flood when it is accepted
        connection.request("GET", "/gradio_api/mcp/", headers={"accept": "text/event-stream"})
        answer = connection.getresponse()
        if answer.status == 200:
            time.sleep(FLOOD_SECONDS)
        else:
            answer.read()
        return answer.status
    answer = connection.getresponse()
    answer.read()
    return answer.status


def _flood(port: int, door: str, values: list) -> dict:
    """FLOOD_WORKERS workers flood `door` for FLOOD_SECONDS while a visitor predicts."""
    deadline, statuses, lock = time.monotonic() + FLOOD_SECONDS, {}, threading.Lock()

    def worker(w: int) -> None:
        connection, k = None, 0
        while time.monotonic() < deadline:
            if connection is None or door == "streams":
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(FLOODER, 0))
            try:
                status = _flood_request(connection, door, values, w * 1_000_000 + k)
            except OSError:
                status, connection = 0, None
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
            k += 1
            if door == "streams" and connection is not None:
                connection.close()

    with ThreadPoolExecutor(FLOOD_WORKERS) as pool:
        flooding = [pool.submit(worker, w) for w in range(FLOOD_WORKERS)]
        visitor, waits = Visitor(port, values), []
        while time.monotonic() < deadline:
            try:
                waits.append(visitor.predict())
            except (OSError, RuntimeError, ValueError, KeyError):
                waits.append(None)
            time.sleep(0.2)
        for future in flooding:
            future.result()
    answered = [w for w in waits if w is not None]
    return {"door": door, "statuses": dict(sorted(statuses.items())), "visitor": _summary(answered) | {
        "asked": len(waits)}}


def flood_bench(port: int, pid: int, values: list) -> list[dict]:
    folder = (glob.glob(os.path.join(tempfile.gettempdir(), f"cgpa-demo-{pid}-*")) or [""])[0]
    doors = ("api", "api-unread", "upload") + (("mcp", "streams") if importlib.util.find_spec("mcp") else ())
    report = []
    for door in doors:
        report.append(_flood(port, door, values) | {"folder_mb": _folder_mb(folder), "rss_mb": _rss_mb(pid)})
    return report


def _folder_mb(folder: str) -> float:
    """The server's folder, measured from outside as an operator would (du), in MB."""
    measured = subprocess.run(["du", "-sb", folder], capture_output=True, text=True) if folder else None
    return int(measured.stdout.split()[0]) / 2 ** 20 if measured and measured.stdout else float("nan")


def demo_bench(run: str | Path, calls: int = 200, clients: int = 40, hostile: bool = True) -> dict:
    model = check_fresh(run)  # refuse a stale model before starting anything
    values = STUDENT[:model.semesters] + [""] * (model.semesters - len(STUDENT)) + [str(model.colleges[0]), False]
    port = free_port()
    server = _start_server(Path(run).resolve(), port)
    try:
        one = Visitor(port, values)
        for _ in range(10):  # warm-up of the server's own paths
            one.predict()
        cpu = _cpu_ms(server.pid)
        sequential = np.array([one.predict() for _ in range(calls)])
        cpu_per_call = (_cpu_ms(server.pid) - cpu) / calls
        visitors = [Visitor(port, values, f"127.0.3.{1 + number}") for number in range(clients)]
        cpu = _cpu_ms(server.pid)
        new = _at_once(visitors)
        cpu_new = (_cpu_ms(server.pid) - cpu) / clients
        returning = _at_once(visitors)
        hostile_report = hostile_bench(port, server.pid, values) if hostile else None
        floods = flood_bench(port, server.pid, values) if hostile else None
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50 = float(np.percentile(sequential, 50))
    new_summary = _summary(new)
    return {"calls": calls, "p50_ms": p50, "p95_ms": float(np.percentile(sequential, 95)), "clients": clients,
            "cpu_ms_per_call": cpu_per_call, "cpu_ms_per_new_session": cpu_new - cpu_per_call,
            "new_visitors": new_summary, "new_visitors_median_over_p50": new_summary["median_ms"] / p50,
            "returning_visitors": _summary(returning), "hostile": hostile_report, "floods": floods}


def format_demo_bench(report: dict) -> str:
    lines = ["demo over raw HTTP, server in its own process (POST + event stream per prediction):",
             (f"  one visitor, {report['calls']} calls on one keep-alive connection: p50 {report['p50_ms']:.1f} ms, "
              f"p95 {report['p95_ms']:.1f} ms"),
             (f"  server CPU: {report['cpu_ms_per_call']:.1f} ms per call, {report['cpu_ms_per_new_session']:.1f} ms "
              "more for a new session's first call")]
    for key, what in (("new_visitors", "first call of each"), ("returning_visitors", "sessions already open")):
        part = report[key]
        lines.append(f"  {report['clients']} visitors at once ({what}): {part['answered']} answered, median "
                     f"{part['median_ms']:.0f} ms, max {part['max_ms']:.0f} ms")
    lines.append(f"  new visitors' median = {report['new_visitors_median_over_p50']:.0f} x the sequential p50")
    hostile = report.get("hostile")
    if hostile:
        lines += [(f"  20 oversized requests ({OVERSIZED_BYTES // 2 ** 20} MB declared each): answered "
                   f"{hostile['oversized_statuses']}; server memory {hostile['rss_before_mb']:.0f} MB before, "
                   f"{hostile['rss_after_mb']:.0f} MB after"),
                  (f"  70 training requests at once (70 visitors): {hostile['trainings_accepted']} running or "
                   f"waiting, {hostile['trainings_refused']} refused {hostile['refusal_reasons']}; meanwhile "
                   f"{hostile['predictions_answered']} of 20 predictions answered (median "
                   f"{hostile['prediction_median_ms']:.0f} ms)")]
    for flood in report.get("floods") or ():
        visitor = flood["visitor"]
        lines.append(f"  {FLOOD_WORKERS} workers of one client flooding {flood['door']} for {FLOOD_SECONDS} s "
                     f"(answered {flood['statuses']}): the visitor's {visitor['answered']} of {visitor['asked']} "
                     f"predictions answered, median {visitor['median_ms']:.0f} ms, max {visitor['max_ms']:.0f} ms; "
                     f"server folder {flood['folder_mb']:.0f} MB, memory {flood['rss_mb']:.0f} MB")
    return "\n".join(lines)
