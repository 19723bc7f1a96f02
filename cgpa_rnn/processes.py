"""Clean stops: a command stopped by SIGTERM or Ctrl-C unwinds like any error, and the processes
it started end with it.

By default SIGTERM (kill, systemd, Docker, a Space, CI's timeout) ends a Python process on the
spot: no `finally` runs, so a training's staging folder, a benchmark's demo server or an
evaluation's workers were left behind. Turned into a normal exit, the clean-up code that already
runs on an error (model/train.py's staging, demo/bench.py's server) runs on a stop too. A child
is also told by the kernel to end when its parent does, which covers a parent killed outright.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # prctl option: the signal a process gets when its parent ends


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM becomes SystemExit(143): `finally` blocks and atexit run. Left alone when someone
    else already handles the signal, or off the main thread (where Python refuses)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def end_with_parent(parent: int) -> None:
    """In a child (a worker's initializer, a Popen's preexec_fn): end when the process `parent`
    ends, however it ends. Linux's PR_SET_PDEATHSIG; elsewhere a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)
