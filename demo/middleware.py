"""ASGI middleware of the demo's server: what reaches Gradio at all, and what a malformed
API call is told."""
from __future__ import annotations

import json
import re

from cgpa_rnn.demo import gradio_compat, service
from cgpa_rnn.jsontext import JsonError, bounded_loads

# An upload at its limit plus the form around it. Gradio reads a body whole before refusing it
# (and keeps memory it grew for a huge one), so the cap is checked first.
MAX_BODY_BYTES = service.UPLOAD_LIMITS.bytes + 256 * 1024


async def answer(send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer a request here, as JSON {"detail": ...}, without the app."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse a request body over MAX_BODY_BYTES before the app reads any of it: by its
    Content-Length when it has one, else by counting while it streams (holding at most the
    limit, then handing the app the same bytes)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    def _too_large(self) -> str:
        return (f"the request is larger than {self.limit // 1024:,} KB; uploads are limited to "
                f"{service.UPLOAD_LIMITS.bytes // 1024:,} KB")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await answer(send, 413, self._too_large())
            return await self.app(scope, receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b""):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await answer(send, 413, self._too_large())
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        await _forward(self.app, scope, receive, send, body)


async def _forward(app, scope, receive, send, body: bytes):
    """Hand the request on to `app` with the body already read, as one message; later
    messages (a disconnect) come from the client as usual."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    await app(scope, replay, send)


# Endpoints that gained optional parameters after programs called them with fewer values: those
# calls still work (ValueCount fills in the defaults). Every other endpoint counts strictly.
GROWN_ENDPOINTS = ("train_own",)  # + scale, group, semesters


class ValueCount:
    """Refuse a call with the wrong number of values, naming the parameters expected. Gradio
    drops values beyond an endpoint's inputs (a value too many is silently ignored) and answers
    too few with its components' reprs. A GROWN_ENDPOINTS call may leave out trailing parameters
    that have a default: they are filled in."""

    def __init__(self, app, endpoints: dict):
        self.app, self.endpoints = app, endpoints

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if gradio_compat.CALL_PATH.fullmatch(path) and path not in self.endpoints:
            name = path.rstrip("/").rsplit("/", 1)[1]
            if f"/gradio_api/call/{name}" not in self.endpoints:  # Gradio answers 500 and logs a traceback
                return await answer(send, 404, f"no endpoint named {name[:60]!r}; the API page (?view=api) lists "
                                               "them")
        if not (path in self.endpoints or path in (gradio_compat.QUEUE_PATH, gradio_compat.RUN_PATH)):
            return await self.app(scope, receive, send)
        chunks = []  # bounded: BodyLimit runs before this
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        problem, body = self._checked(scope["path"], body)
        if problem:
            return await answer(send, 400, problem)
        await _forward(self.app, scope, receive, send, body)

    def _checked(self, path: str, body: bytes) -> tuple[str | None, bytes]:
        """The problem with a call (None when there is none) and its body, defaults filled in."""
        try:
            payload = bounded_loads(body, "the request", max_depth=None)
            key, values = gradio_compat.call_of(path, payload)
        except JsonError as error:  # over the limits (or not JSON): answered here, before Gradio parses it again
            return str(error), body
        except ValueError as error:  # a shape this check does not know is refused, never passed on unchecked
            return f"the request: {error}", body
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            return None, body  # one of the page's private events (the shipped-data button): nothing to count
        name, names, defaults = endpoint
        left_out = defaults[len(values):]
        if len(values) == len(names):
            return None, body
        if len(values) < len(names) and all(left_out):
            payload["data"] = values + [default[0] for default in left_out]
            return None, json.dumps(payload).encode()
        return f"/{name} expects {len(names)} values ({', '.join(names)}), got {len(values)}", body


class ClosedRoutes:
    """404 for the Gradio routes in CLOSED_PATHS."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith(gradio_compat.CLOSED_PATHS):
            return await answer(send, 404, "not offered by this demo")
        await self.app(scope, receive, send)


# What gives away Python's insides in an error body: an object's or a class's repr, a traceback.
# Matched on the text, not on where Gradio puts it, so a message Gradio moves is still caught.
PYTHON_INSIDES = re.compile(rb"object at 0x|<class '|<(gradio|cgpa_rnn)\.|Traceback \(most recent call|"
                            rb"errors\.pydantic\.dev|input_value=")


class ReprFreeErrors:
    """ASGI middleware: Gradio answers a malformed API call (too few values, say) with a message
    that lists its components as Python object reprs; a caller gets one plain line instead."""

    MESSAGE = b'{"detail": "the request does not match this endpoint\'s parameters; see the API page (?view=api)"}'

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        held = []

        async def checked_send(message):
            if message["type"] == "http.response.start" and message["status"] in (400, 422, 500):
                held.append(message)  # wait for the body to see what it says
                return
            if held and message["type"] == "http.response.body":
                start, body = held[0], message.get("body", b"")
                if PYTHON_INSIDES.search(body):
                    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                    start = {**start, "headers": headers + [(b"content-length", str(len(self.MESSAGE)).encode())]}
                    message = {**message, "body": self.MESSAGE}
                held.clear()
                await send(start)
            await send(message)

        await self.app(scope, receive, checked_send)
