"""What the demo deletes on its own, on a timer: idle visitors' models and old scored files.

A timer, not the next request: on a quiet server nothing else would ever run. Gradio's own
cache (uploads, its copies of results) is cleaned by Gradio's `delete_cache` timer, and
everything of a server that stopped is removed by the next one at start
(environment.sweep_stopped_servers). Logs name what was deleted and why, never its content.
"""
from __future__ import annotations

import sys
import threading

from cgpa_rnn.demo import service
from cgpa_rnn.demo.visitors import OwnModels

CLEAN_EVERY_SECONDS = 30


def log(line: str) -> None:
    """One line in the server's log: file names and reasons only, never grades or roll numbers."""
    print(f"cgpa demo: {line}", file=sys.stderr, flush=True)


def clean_once(models: OwnModels) -> None:
    expired = models.expire()
    scored = service.delete_old_scored_files(service.SCORED_KEEP_SECONDS)
    if expired or scored:
        log(f"deleted {expired} idle visitor model(s) and {scored} scored file(s) past their time")


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
