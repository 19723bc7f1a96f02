"""Whether the demo can listen where it was asked to, told before anything heavy is imported
(Gradio takes ~20 s to find out, then quotes its own advice)."""
from __future__ import annotations

import errno
import socket

from cgpa_rnn.errors import UserError


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the system picks it), for a server started next."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """Raise a one-line UserError when host:port cannot be listened on now."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            taken = error.errno == errno.EADDRINUSE
            raise UserError(f"--port {port}: " + ("another program is already listening on it; pick another port"
                                                  if taken else f"cannot listen on {host}:{port} "
                                                  f"({error.strerror or error})")) from None
