"""The demo's process settings and private folders, in one place, before Gradio is imported.

Imported first by the package (demo/__init__.py): Gradio reads some of its environment when
it is imported, so every module of the demo can `import gradio` at its top with these set.

Everything the server writes lives in one folder of its own, made by `mkdtemp` (a fresh,
unguessable name, readable by this user only), so a file planted at a fixed name in /tmp
cannot redirect it: Gradio's cache of uploads and results, the scored CSVs, and visitors'
models. A server that stops without cleaning up (killed, power cut) leaves its folder; the
next server removes the folders of servers that no longer run (`sweep_stopped_servers`).
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
from pathlib import Path

from cgpa_rnn.rundir import process_alive

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SERVER_PREFIX = "cgpa-demo-"
SERVER_DIR = Path(tempfile.mkdtemp(prefix=f"{SERVER_PREFIX}{os.getpid()}-"))
GRADIO_DIR = SERVER_DIR / "gradio"  # Gradio's uploads and its copies of results
SCORED_DIR = SERVER_DIR / "scored"  # scored CSVs, until Gradio has copied them for the download
SESSIONS_DIR = SERVER_DIR / "sessions"  # visitors' uploads and models
for _folder in (GRADIO_DIR, SCORED_DIR, SESSIONS_DIR):
    _folder.mkdir(mode=0o700)
# Always this server's own folder, also when a parent process (a test, the benchmark) passed
# its own down: two servers never share a cache.
os.environ["GRADIO_TEMP_DIR"] = str(GRADIO_DIR)
atexit.register(shutil.rmtree, SERVER_DIR, ignore_errors=True)
# `kill`, systemd, Docker and a Space stop a server with SIGTERM, which by default ends the
# process without running atexit: turn it into a normal exit so the folder goes too.
if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


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
