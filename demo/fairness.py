"""Shares of the server per client: what one address may hold at once on the doors where a
single client could monopolise the CPU, the connections or the disk.

- Queued calls (the page's events, API calls through /gradio_api/call or the queue): at most
  WAITING_PER_CLIENT of one client's calls wait in Gradio's queue at once, a quarter of its
  size: a visitor waits behind at most that many of a flooder's calls, even one that never
  reads its answers (docs/demo.md gives what was measured).
- MCP tool calls: each holds its request open until the tool has run, and runs in the same
  queue as the page's events; one client gets MCP_CALLS_AT_ONCE of them at a time, so a flood
  of calls queues at most that many events ahead of a visitor.
- Event streams (an MCP client's standing stream): STREAMS_PER_CLIENT per client and
  STREAMS_IN_ALL in all, each ended after STREAM_IDLE_SECONDS without an event (keep-alive
  pings do not count). MCP's older SSE transport, which answers a call at once and runs it
  later, is closed (gradio_compat.CLOSED_PATHS): only the streamable HTTP one is served.
- Uploads: UPLOADS_PER_MINUTE and UPLOAD_BYTES_PER_MINUTE per client, none while the server's
  folder is over DISK_BUDGET_BYTES; an upload no call has claimed is deleted a minute after it
  arrived (retention.Uploads).

A client is its address; behind Hugging Face's proxy (a Space, where SPACE_ID is set) it is
the address the proxy appended to X-Forwarded-For, the one entry a client cannot forge. A
refused request gets 429 (503 for the disk budget) with a sentence; the log gets one line
per client and minute, however many were refused.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from cgpa_rnn.demo import environment
from cgpa_rnn.demo.gradio_compat import CALL_PATH, MCP_PATH, QUEUE_PATH, UPLOAD_PATH
from cgpa_rnn.demo.middleware import answer
from cgpa_rnn.demo.retention import UPLOADS, log

WAITING_PER_CLIENT = 16
REFUSAL_PAUSE_SECONDS = 1.0
MCP_CALLS_AT_ONCE = 2
STREAMS_PER_CLIENT = 4
STREAMS_IN_ALL = 100
STREAM_IDLE_SECONDS = 60
UPLOADS_PER_MINUTE = 20
UPLOAD_BYTES_PER_MINUTE = 20 << 20
DISK_BUDGET_BYTES = 256 << 20


def client_of(scope) -> str:
    if os.environ.get("SPACE_ID"):
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for").decode("latin-1")
        if forwarded.split(",")[-1].strip():
            return forwarded.split(",")[-1].strip()
    return scope["client"][0] if scope.get("client") else "?"


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # deleted while we looked
                pass
    return total


class FairShare:
    """ASGI middleware holding each client to its share of the queue, the MCP calls, the event
    streams and the uploads. Counts live only while they are above zero: an address that comes
    once leaves no entry behind."""

    def __init__(self, app, waiting: Callable[[str], int] = lambda client: 0):
        self.app, self.waiting = app, waiting  # waiting(client): that client's calls waiting in the queue
        self.joining: dict[str, int] = {}  # calls on their way into the queue (not yet in `waiting`)
        self.calls: dict[str, int] = {}  # MCP calls running
        self.streams: dict[str, int] = {}  # open MCP event streams
        self.open_streams = 0
        self.uploads: dict[str, deque] = {}  # [time, bytes] per upload over the last minute
        self.logged: dict[str, float] = {}
        self.disk = (0.0, 0)  # (when measured, bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method, client = scope["path"], scope["method"], client_of(scope)
        if path.startswith(MCP_PATH) and method in ("GET", "POST"):
            if method == "GET":
                return await self._stream(scope, receive, send, client)
            if self.calls.get(client, 0) >= MCP_CALLS_AT_ONCE:
                return await self._refuse(send, client, 429, f"at most {MCP_CALLS_AT_ONCE} MCP calls at once from "
                                                             "one address; wait for your answers")
            return await _counted(self.calls, client, self.app(scope, receive, send))
        if path == UPLOAD_PATH and method == "POST":
            return await self._upload(scope, receive, send, client)
        if method == "POST" and (path == QUEUE_PATH or CALL_PATH.fullmatch(path)):
            if self.waiting(client) + self.joining.get(client, 0) >= WAITING_PER_CLIENT:
                return await self._refuse(send, client, 429, f"at most {WAITING_PER_CLIENT} calls from one address "
                                                             "may wait in the queue; wait for your answers")
            return await _counted(self.joining, client, self.app(scope, receive, send))
        await self.app(scope, receive, send)

    async def _stream(self, scope, receive, send, client: str):
        if self.open_streams >= STREAMS_IN_ALL:
            return await self._refuse(send, client, 429, f"the server has its {STREAMS_IN_ALL} event streams open; "
                                                         "try again in a minute")
        if self.streams.get(client, 0) >= STREAMS_PER_CLIENT:
            return await self._refuse(send, client, 429, f"at most {STREAMS_PER_CLIENT} open event streams per "
                                                         "address; close one first")
        self.open_streams += 1
        try:
            await _counted(self.streams, client, self._until_idle(scope, receive, send))
        finally:
            self.open_streams -= 1

    async def _until_idle(self, scope, receive, send):
        """Serve an event stream, ended after STREAM_IDLE_SECONDS without an event (its keep-alive
        pings, SSE comments, do not count): an idle stream's connection and memory are let go."""
        last, started = time.monotonic(), False

        async def timed_send(message):
            nonlocal last, started
            started = started or message["type"] == "http.response.start"
            if not (message["type"] == "http.response.body" and message.get("body", b"").startswith(b":")):
                last = time.monotonic()
            await send(message)

        serving = asyncio.ensure_future(self.app(scope, receive, timed_send))
        try:
            while not serving.done():
                await asyncio.wait({serving}, timeout=max(0.0, last + STREAM_IDLE_SECONDS - time.monotonic()))
                if not serving.done() and time.monotonic() - last >= STREAM_IDLE_SECONDS:
                    serving.cancel()
                    await asyncio.wait({serving})
                    if not started:
                        await send({"type": "http.response.start", "status": 204, "headers": []})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
            serving.result()
        finally:
            if not serving.done():  # this request was cancelled itself (the client went away)
                serving.cancel()

    async def _upload(self, scope, receive, send, client: str):
        declared = b",".join(v for k, v in scope["headers"] if k == b"content-length")
        now = time.monotonic()
        window = self.uploads.pop(client, deque())
        while window and window[0][0] < now - 60:
            window.popleft()
        if window:  # an address whose minute has passed leaves no entry behind
            self.uploads[client] = window
        entry = [now, int(declared) if declared.isdigit() else 0]
        if len(window) >= UPLOADS_PER_MINUTE or sum(b for _, b in window) + entry[1] > UPLOAD_BYTES_PER_MINUTE:
            return await self._refuse(send, client, 429, f"at most {UPLOADS_PER_MINUTE} uploads and "
                                                         f"{UPLOAD_BYTES_PER_MINUTE >> 20} MB a minute from one "
                                                         "address; try again in a minute")
        if self._disk_used(now) + entry[1] > DISK_BUDGET_BYTES:
            return await self._refuse(send, client, 503, "the server's space for uploads is full; try again in a "
                                                         "minute")
        window.append(entry)
        self.uploads[client] = window
        received = 0

        async def counted_receive():  # a chunked upload declares no length: its bytes count as they come
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                entry[1] = max(entry[1], received)
            return message

        answer = []

        async def recorded_send(message):  # the answer lists where the files were put
            if message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        paths = json.loads(b"".join(answer))
                        UPLOADS.arrived([p for p in paths if isinstance(p, str)] if isinstance(paths, list) else [])
                    except ValueError:
                        pass
            await send(message)

        await self.app(scope, counted_receive, recorded_send)

    def _disk_used(self, now: float) -> int:
        when, used = self.disk
        if now - when > 1.0:  # measured at most once a second
            self.disk = (now, folder_bytes(environment.folders().root))
        return self.disk[1]

    async def _refuse(self, send, client: str, status: int, detail: str) -> None:
        # Answered after a pause: a client that sends again at once would otherwise turn cheap refusals
        # into a flood of its own; waiting costs the server a connection, not CPU.
        await asyncio.sleep(REFUSAL_PAUSE_SECONDS)
        now = time.monotonic()
        if now - self.logged.get(client, -60.0) >= 60:
            self.logged = {c: t for c, t in self.logged.items() if now - t < 60}
            self.logged[client] = now
            log(f"refused requests from one client over its share: {detail.split(';')[0]} (one line per client "
                "and minute)")
        await answer(send, status, detail, [(b"retry-after", b"60" if "minute" in detail else b"1")])


async def _counted(counts: dict[str, int], client: str, work) -> None:
    """Await `work` with the client counted in `counts` meanwhile (its entry gone at zero)."""
    counts[client] = counts.get(client, 0) + 1
    try:
        await work
    finally:
        counts[client] -= 1
        if not counts[client]:
            del counts[client]
