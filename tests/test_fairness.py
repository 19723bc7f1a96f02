"""One client's share of the server (demo/fairness.py), through the running demo: each door
refuses what is over one address's share, in a sentence, while another address is served.
Loopback has many addresses (127.0.0.x), so each test's clients are distinct ones. How fast a
visitor is answered during a flood is measured by the benchmark (`python -m demo.bench`), not here."""
from __future__ import annotations

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import SHIPPED, connection_from, port_of, request_from

from cgpa_rnn.demo import fairness
from cgpa_rnn.demo.retention import UPLOADS
from cgpa_rnn.demo.tabs import student

MCP_CALL = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "predict_student", "arguments": {"semester_1st": "7.1", "semester_2nd": "6.8", "semester_3rd": "",
                                             "semester_4th": "", "semester_5th": "", "college": "115"}}})
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _upload(port: int, address: str, name: str, content: bytes) -> tuple[int, bytes]:
    body = (f'--x\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode() + content + b"\r\n--x--\r\n"
    return request_from(port, address, "POST", "/gradio_api/upload", body,
                    {"content-type": "multipart/form-data; boundary=x"})


class Held:
    """Stands in for the prediction behind /predict_json and the MCP tool: each call waits until released."""

    def __init__(self):
        self.release, self.entered, self.lock = threading.Event(), 0, threading.Lock()

    def __call__(self, backends, values):
        with self.lock:
            self.entered += 1
        self.release.wait(60)
        return ask(backends, values)


ask = student.ask


@pytest.fixture(scope="module")
def mcp_url():
    from conftest import free_port

    from cgpa_rnn.demo.app import build_demo, launch

    demo = build_demo(SHIPPED)
    port = free_port()
    launch(demo, server_name="127.0.0.1", port=port, mcp=True, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_uploads_are_limited_per_client_and_an_unused_one_is_deleted(app_url, monkeypatch):
    port, csv_text = port_of(app_url), b"1st,2nd,College Code\n7,7.5,115\n"
    answers = [_upload(port, "127.0.0.8", f"class-{k}.csv", csv_text) for k in range(fairness.UPLOADS_PER_MINUTE + 1)]
    assert [status for status, _ in answers[:-1]] == [200] * fairness.UPLOADS_PER_MINUTE
    assert answers[-1][0] == 429 and b"at most 20 uploads and 20 MB a minute from one address" in answers[-1][1]
    status, other = _upload(port, "127.0.0.9", "mine.csv", csv_text)  # another client is served
    assert status == 200
    paths = [json.loads(body)[0] for _, body in answers[:-1]] + json.loads(other)
    # One upload is used by a call (claimed); the janitor deletes the others, which no call used.
    data = json.dumps({"data": [{"path": paths[-1], "meta": {"_type": "gradio.FileData"}}, 6, False]})
    status, body = request_from(port, "127.0.0.9", "POST", "/gradio_api/call/predict_batch", data,
                            {"content-type": "application/json"})
    event = json.loads(body)["event_id"]
    answer = request_from(port, "127.0.0.9", "GET", f"/gradio_api/call/predict_batch/{event}")[1]
    assert b"1 of 1 student scored" in answer
    assert UPLOADS.delete_unclaimed(older_than=0) >= fairness.UPLOADS_PER_MINUTE
    assert not any(Path(p).exists() for p in paths[:-1]) and Path(paths[-1]).exists()
    monkeypatch.setattr(fairness, "DISK_BUDGET_BYTES", 0)  # a server whose folder is at its budget
    status, body = _upload(port, "127.0.0.10", "late.csv", csv_text)
    assert status == 503 and b"the server's space for uploads is full" in body


def test_one_client_holds_at_most_its_share_of_the_queue(app_url, monkeypatch):
    held = Held()
    monkeypatch.setattr(student, "ask", held)
    port, data = port_of(app_url), json.dumps({"data": ["7.1", "6.8", "", "", "", "115", False]})

    def call(address: str) -> int:
        return request_from(port, address, "POST", "/gradio_api/call/predict_json", data,
                        {"content-type": "application/json"})[0]

    try:
        share = fairness.WAITING_PER_CLIENT
        statuses = [call("127.0.0.11") for _ in range(share + 8)]
        assert statuses.count(429) >= 6 and statuses[:share] == [200] * share
        for spelling in ("/gradio_api/call/predict_json/", "/gradio_api/call/v2/predict_json",
                         "/gradio_api/run/predict_json"):  # no way around the share, nor around the queue
            status = request_from(port, "127.0.0.11", "POST", spelling, data, {"content-type": "application/json"})[0]
            assert status in (429, 404, 405), spelling
        assert call("127.0.0.12") == 200  # three quarters of the queue stay for everyone else
    finally:
        held.release.set()
    # Drained before the next test: a call from another address is answered after every call queued before it.
    status, body = request_from(port, "127.0.0.15", "POST", "/gradio_api/call/predict_json", data,
                            {"content-type": "application/json"})
    event = json.loads(body)["event_id"]
    answer = request_from(port, "127.0.0.15", "GET", f"/gradio_api/call/predict_json/{event}")[1]
    assert b"event: complete" in answer


def test_one_client_gets_two_mcp_calls_at_once_and_four_event_streams(mcp_url, monkeypatch):
    held = Held()
    monkeypatch.setattr(student, "ask", held)
    port = port_of(mcp_url)
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(request_from, port, "127.0.0.5", "POST", "/gradio_api/mcp/", MCP_CALL, MCP_HEADERS)
                   for _ in range(fairness.MCP_CALLS_AT_ONCE)]
        while held.entered < fairness.MCP_CALLS_AT_ONCE:
            threading.Event().wait(0.05)
        status, body = request_from(port, "127.0.0.5", "POST", "/gradio_api/mcp/", MCP_CALL, MCP_HEADERS)
        assert status == 429 and b"at most 2 MCP calls at once from one address" in body
        held.release.set()
        assert all(call.result()[0] == 200 and b'"isError":false' in call.result()[1] for call in running)
    streams = []
    try:
        for _ in range(fairness.STREAMS_PER_CLIENT):
            streams.append(connection_from(port, "127.0.0.6"))
            streams[-1].request("GET", "/gradio_api/mcp/", headers={"accept": "text/event-stream"})
            assert streams[-1].getresponse().status == 200
        status, body = request_from(port, "127.0.0.6", "GET", "/gradio_api/mcp/",
                                    headers={"accept": "text/event-stream"})
        assert status == 429 and b"at most 4 open event streams per address" in body
        other = connection_from(port, "127.0.0.7")
        other.request("GET", "/gradio_api/mcp/", headers={"accept": "text/event-stream"})
        assert other.getresponse().status == 200
        streams.append(other)
    finally:
        for stream in streams:
            stream.close()


def test_an_idle_event_stream_is_closed(mcp_url, monkeypatch):
    monkeypatch.setattr(fairness, "STREAM_IDLE_SECONDS", 1)
    stream = connection_from(port_of(mcp_url), "127.0.0.13")
    stream.request("GET", "/gradio_api/mcp/", headers={"accept": "text/event-stream"})
    answer = stream.getresponse()
    assert answer.status == 200
    try:  # ended by the server: the read returns (else the connection's 60 s timeout fails the test)
        answer.read()
    except http.client.IncompleteRead:
        pass
    stream.close()


def test_a_flood_of_malformed_mcp_calls_logs_one_line_each_and_no_values(mcp_url, capfd):
    port = port_of(mcp_url)
    malformed = ['{"jsonrpc":"2.0","id":1,"method":"tools/call"}',  # 37 bytes: ~90 lines of the MCP library's
                 '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"predict_student","arguments":"17020.0"}}',
                 '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_17020","arguments":{}}}',
                 '{"jsonrpc":"2.0","method":"notifications/x17020"}', '{"jsonrpc":"2.0","id":4,"method":"x/17020"}',
                 '{"17020.0', '[17020]']
    capfd.readouterr()
    for body in malformed * 10:
        assert request_from(port, "127.0.0.14", "POST", "/gradio_api/mcp/", body, MCP_HEADERS)[0] < 500  # answered
    log = capfd.readouterr().err.splitlines()
    assert "17020" not in "\n".join(log) and len(log) <= len(malformed) * 10, log[:20]
    assert all(line.startswith("cgpa demo: refused an MCP") for line in log), log[:20]
