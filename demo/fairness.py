"""Shares of the server per client: what one address may hold at once on the doors where a
single client could monopolise the CPU, the connections or the disk.

- Queued calls (the page's events, API calls through /gradio_api/call or the queue): at most
  WAITING_PER_CLIENT of one client's calls wait in Gradio's queue at once, three quarters of
  its size: a client's burst of dozens is served, and a quarter stays for everyone else.
- MCP tool calls: each holds its request open until the tool has run, and runs in the same
  queue as the page's events; one client gets MCP_CALLS_AT_ONCE of them at a time, so a flood
  of calls queues at most that many events ahead of a visitor.
- Event streams (an MCP client's standing stream): STREAMS_PER_CLIENT per client and
  STREAMS_IN_ALL in all, each closed after STREAM_IDLE_SECONDS without a byte.
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
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path

from cgpa_rnn.demo.environment import SERVER_DIR
from cgpa_rnn.demo.retention import UPLOADS, log

WAITING_PER_CLIENT = 48
REFUSAL_PAUSE_SECONDS = 1.0
MCP_CALLS_AT_ONCE = 2
STREAMS_PER_CLIENT = 4
STREAMS_IN_ALL = 100
STREAM_IDLE_SECONDS = 60
UPLOADS_PER_MINUTE = 20
UPLOAD_BYTES_PER_MINUTE = 20 << 20
DISK_BUDGET_BYTES = 256 << 20
UPLOAD_PATH, QUEUE_PATH, CALL_PREFIX = "/gradio_api/upload", "/gradio_api/queue/join", "/gradio_api/call/"


def client_of(scope) -> str:
    if os.environ.get("SPACE_ID"):
        forwarded = dict(scope["headers"]).get(b"x-forwarded-for", b"").decode("latin-1").split(",")
        if forwarded[-1].strip():
            return forwarded[-1].strip()
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
    """ASGI middleware holding each client to its share of the MCP calls, event streams and uploads."""

    def __init__(self, app, waiting: Callable[[str], int] = lambda client: 0):
        self.app, self.waiting = app, waiting  # waiting(client): that client's calls waiting in the queue
        self.calls: dict[str, int] = defaultdict(int)
        self.streams: dict[str, int] = defaultdict(int)
        self.uploads: dict[str, deque] = defaultdict(deque)  # (time, bytes) over the last minute
        self.logged: dict[str, float] = {}
        self.disk = (0.0, 0)  # (when measured, bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method, client = scope["path"], scope["method"], client_of(scope)
        if path.startswith("/gradio_api/mcp"):
            if method == "GET":
                return await self._stream(scope, receive, send, client)
            if method == "POST":
                return await self._call(scope, receive, send, client)
        if path == UPLOAD_PATH and method == "POST":
            return await self._upload(scope, receive, send, client)
        if method == "POST" and (path == QUEUE_PATH or (path.startswith(CALL_PREFIX) and path.count("/") == 3)):
            if self.waiting(client) >= WAITING_PER_CLIENT:
                return await self._refuse(send, client, 429, f"at most {WAITING_PER_CLIENT} calls from one address "
                                                             "may wait in the queue; wait for your answers")
        await self.app(scope, receive, send)

    async def _call(self, scope, receive, send, client: str):
        if self.calls[client] >= MCP_CALLS_AT_ONCE:
            return await self._refuse(send, client, 429, f"at most {MCP_CALLS_AT_ONCE} MCP calls at once from one "
                                                         "address; wait for your answers")
        self.calls[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._release(self.calls, client)

    async def _stream(self, scope, receive, send, client: str):
        if self.streams[client] >= STREAMS_PER_CLIENT or sum(self.streams.values()) >= STREAMS_IN_ALL:
            return await self._refuse(send, client, 429, f"at most {STREAMS_PER_CLIENT} open event streams per "
                                                         "address; close one first")
        self.streams[client] += 1
        last = time.monotonic()

        async def timed_send(message):
            nonlocal last
            last = time.monotonic()
            await send(message)

        serving = asyncio.ensure_future(self.app(scope, receive, timed_send))
        try:
            while not serving.done():
                await asyncio.wait({serving}, timeout=max(0.0, last + STREAM_IDLE_SECONDS - time.monotonic()))
                if not serving.done() and time.monotonic() - last >= STREAM_IDLE_SECONDS:
                    serving.cancel()  # idle: the connection ends, its memory with it
            if not serving.cancelled():
                serving.result()
        except asyncio.CancelledError:
            if not serving.done():
                serving.cancel()
                raise
        finally:
            self._release(self.streams, client)

    async def _upload(self, scope, receive, send, client: str):
        length = dict(scope["headers"]).get(b"content-length", b"")
        size = int(length) if length.isdigit() else 0  # BodyLimit, before this, bounds a chunked one
        window, now = self.uploads[client], time.monotonic()
        while window and window[0][0] < now - 60:
            window.popleft()
        if len(window) >= UPLOADS_PER_MINUTE or sum(b for _, b in window) + size > UPLOAD_BYTES_PER_MINUTE:
            return await self._refuse(send, client, 429, f"at most {UPLOADS_PER_MINUTE} uploads and "
                                                         f"{UPLOAD_BYTES_PER_MINUTE >> 20} MB a minute from one "
                                                         "address; try again in a minute")
        if self._disk_used(now) + size > DISK_BUDGET_BYTES:
            return await self._refuse(send, client, 503, "the server's space for uploads is full; try again in a "
                                                         "minute")
        window.append((now, size))
        body = []

        async def recorded_send(message):  # the answer lists where the files were put
            if message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        paths = json.loads(b"".join(body))
                        UPLOADS.arrived([p for p in paths if isinstance(p, str)] if isinstance(paths, list) else [])
                    except ValueError:
                        pass
            await send(message)

        await self.app(scope, receive, recorded_send)

    def _disk_used(self, now: float) -> int:
        when, used = self.disk
        if now - when > 1.0:  # measured at most once a second
            self.disk = (now, folder_bytes(SERVER_DIR))
        return self.disk[1]

    @staticmethod
    def _release(counts: dict, client: str) -> None:
        counts[client] -= 1
        if counts[client] <= 0:
            del counts[client]

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
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", b"60" if status == 503 or "minute" in detail else b"1")]})
        await send({"type": "http.response.body", "body": body})
