"""ASGI middleware of the demo's server: what a malformed API call is told."""
from __future__ import annotations


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
                if b"object at 0x" in body:
                    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                    start = {**start, "headers": headers + [(b"content-length", str(len(self.MESSAGE)).encode())]}
                    message = {**message, "body": self.MESSAGE}
                held.clear()
                await send(start)
            await send(message)

        await self.app(scope, receive, checked_send)
