"""What the demo deletes on its own, on a timer: idle visitors' models, old scored files and
uploads no call has used.

A timer, not the next request: on a quiet server nothing else would ever run. Gradio's own
cache (uploads, its copies of results) is cleaned by Gradio's `delete_cache` timer, and
everything of a server that stopped is removed by the next one at start
(environment.sweep_stopped_servers). Logs name what was deleted and why, never its content.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from cgpa_rnn.demo import service
from cgpa_rnn.demo.visitors import OwnModels
from cgpa_rnn.errors import UserError

CLEAN_EVERY_SECONDS = 30
UNCLAIMED_SECONDS = 60  # an upload no call has used is deleted after this (checked every CLEAN_EVERY_SECONDS)


def log(line: str) -> None:
    """One line in the server's log: file names and reasons only, never grades or roll numbers."""
    print(f"cgpa demo: {line}", file=sys.stderr, flush=True)


class Uploads:
    """The uploads that arrived and that no call has claimed yet, by path; shared with the janitor's thread."""

    def __init__(self):
        self._arrived: dict[str, float] = {}
        self._lock = threading.Lock()

    def arrived(self, paths: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            self._arrived.update({path: now for path in paths})

    def keep(self, path: str | Path | None) -> None:
        """A call uses this upload: it is not deleted as unclaimed (Gradio's own clean-up still deletes it)."""
        with self._lock:
            self._arrived.pop(str(path), None)

    def claim(self, path: str | Path | None) -> str | None:
        """keep(path), refusing in one sentence an upload that is gone already."""
        if path is None:
            return None
        self.keep(path)
        if not Path(path).is_file():
            raise UserError(f"{Path(path).name}: the upload is gone (an upload no call uses within a minute is "
                            "deleted); upload it again")
        return str(path)

    def delete_unclaimed(self, older_than: float = UNCLAIMED_SECONDS) -> int:
        deadline = time.monotonic() - older_than
        with self._lock:
            expired = [path for path, at in self._arrived.items() if at < deadline]
            for path in expired:
                del self._arrived[path]
        for path in expired:
            Path(path).unlink(missing_ok=True)
        return len(expired)


UPLOADS = Uploads()


def clean_once(models: OwnModels) -> None:
    expired = models.expire()
    scored = service.delete_old_scored_files(service.SCORED_KEEP_SECONDS)
    unclaimed = UPLOADS.delete_unclaimed()
    if expired or scored or unclaimed:
        log(f"deleted {expired} idle visitor model(s), {scored} scored file(s) and {unclaimed} unused upload(s) "
            "past their time")


class Janitor:
    """A daemon thread that runs clean_once every `every` seconds until stopped."""

    def __init__(self, models: OwnModels, every: float = CLEAN_EVERY_SECONDS):
        self.models, self.every = models, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cgpa-demo-janitor", daemon=True)

    def start(self) -> Janitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                clean_once(self.models)
            except OSError as error:  # a folder removed under us: try again next time
                log(f"clean-up postponed ({error.strerror or type(error).__name__})")
