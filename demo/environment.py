"""The demo server's private folders and its stop signal, prepared when the server is built.

Importing this module changes nothing but two environment defaults (Gradio reads them when it
is imported, so they must be set before anything imports Gradio). The folder is made by the
first `folders()` call (build_demo's), the SIGTERM handler by
`cgpa_rnn.processes.stop_cleanly_on_sigterm()` (launch's): a program that imports a helper from the demo gets neither.

Everything the server writes lives in one folder of its own, made by `mkdtemp` (a fresh,
unguessable name, readable by this user only), so a file planted at a fixed name in /tmp
cannot redirect it: Gradio's cache of uploads and results, the scored CSVs, and visitors'
models. A server that stops without cleaning up (killed, power cut) leaves its folder; the
next server removes the folders of servers that no longer run (`sweep_stopped_servers`).
"""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cgpa_rnn.rundir import process_alive

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SERVER_PREFIX = "cgpa-demo-"


@dataclass(frozen=True)
class ServerFolders:
    root: Path  # removed when the server exits
    gradio: Path  # Gradio's uploads and its copies of results
    scored: Path  # scored CSVs, until Gradio has copied them for the download
    sessions: Path  # visitors' uploads and models


@functools.cache
def folders() -> ServerFolders:
    """This server's folders, made on the first call and removed when the process exits. build_demo
    points Gradio at its own (gradio_compat.cache_in), also when a parent process (a test, the
    benchmark) passed its own GRADIO_TEMP_DIR down: two servers never share a cache."""
    root = Path(tempfile.mkdtemp(prefix=f"{SERVER_PREFIX}{os.getpid()}-"))
    made = ServerFolders(root, root / "gradio", root / "scored", root / "sessions")
    for folder in (made.gradio, made.scored, made.sessions):
        folder.mkdir(mode=0o700)
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return made


def _stopped_server_folder(path: Path) -> bool:
    """A real folder of ours (not a symlink, owned by this user) named after a process that is gone."""
    try:
        info = path.lstat()
    except OSError:
        return False
    pid = path.name[len(SERVER_PREFIX):].split("-", 1)[0]
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and pid.isdigit()
            and not process_alive(pid))


def sweep_stopped_servers() -> list[str]:
    """Remove the folders of demo servers that stopped without cleaning up; their names."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{SERVER_PREFIX}*"):
        if _stopped_server_folder(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
