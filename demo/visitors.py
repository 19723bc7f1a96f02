"""Visitors' own models: whose each one is, when it may be trained, and when it goes.

A model is served to the browser session that trained it and to no other. Trainings take
turns in a small line of their own (one runs, a few wait; one place per session), so a
client that sends many of them is refused at once instead of filling the queue that every
visitor's predictions share. A model and its upload are deleted when the page is closed
(also while its training waits or runs: the training stops at its next step, or its result
is deleted on arrival), after an hour without use (checked by a timer, demo/retention.py),
and the least recently used first when more than MAX_MODELS exist.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

from cgpa_rnn.data import CohortFormat
from cgpa_rnn.demo import environment, training
from cgpa_rnn.demo.training import OwnModel, Report
from cgpa_rnn.errors import UserError

IDLE_SECONDS = 3600  # a session that never said goodbye (an API client) loses its model after this
MAX_MODELS = 20  # models kept at once across sessions; the least recently used goes first
WAITING_TRAININGS = 3  # trainings that may wait behind the running one; more are refused
QUEUE_FULL = "the training queue is full, try again in a few minutes"
ALREADY_QUEUED = "a training of yours is already running or waiting; this one was not started"
PAGE_CLOSED = "the page was closed, so its training was stopped and its files deleted"
STILL_TRAINING = "your model is still training: try again when it is done"
WAITING_IN_LINE = "your training is waiting in line ({ahead} ahead of it): try again when your model is done"


class TrainingCancelled(UserError):
    """The page that asked for a training was closed."""


def _delete(models: list[OwnModel | None]) -> None:
    for model in models:
        if model is not None:
            shutil.rmtree(model.directory, ignore_errors=True)


class OwnModels:
    """The visitors' models by session, and the line of trainings; safe from Gradio's threads."""

    def __init__(self, root: Path | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="models-", dir=root or environment.folders().sessions))
        self._models: dict[str, OwnModel] = {}
        self._line: list[str] = []  # sessions whose training runs (the first) or waits, in order
        self._closed: set[str] = set()  # sessions in the line whose page is gone
        self._lock = threading.Condition()

    # -- training, in turn ------------------------------------------------------------------

    def train(self, session: str, path: str | Path, report: Report = lambda share, what: None,
              form: CohortFormat = CohortFormat()) -> OwnModel:
        """Wait for this session's turn, train, and keep the model for the session; refused at
        once when the line is full or the session already has a place in it."""
        self._enter(session, report)
        try:
            def checked(share: float, what: str) -> None:  # each step (epoch) looks whether the page is gone
                self._raise_if_closed(session)
                report(share, what)

            model = training.train_own_model(path, self.root, checked, form)
            self.keep(session, model)  # deleted on arrival if the page closed in the meantime
            return model
        finally:
            self._leave(session)

    def _enter(self, session: str, report: Report) -> None:
        with self._lock:
            if session in self._line:
                raise UserError(ALREADY_QUEUED)
            if len(self._line) > WAITING_TRAININGS:
                raise UserError(QUEUE_FULL)
            self._line.append(session)
            # The session's model is replaced from now on: whatever this training ends in, nothing
            # answers for the page from a model it has asked to replace.
            replaced = self._models.pop(session, None)
        _delete([replaced])
        with self._lock:
            while self._line[0] != session and session not in self._closed:
                report(0.0, f"waiting for the trainings ahead of yours to finish ({self._line.index(session)} "
                            "ahead)")
                self._lock.wait(timeout=5)
        if session in self._closed:  # its page closed while it waited: it never starts
            self._leave(session)
            raise TrainingCancelled(PAGE_CLOSED)

    def _leave(self, session: str) -> None:
        with self._lock:
            self._line.remove(session)
            self._closed.discard(session)
            self._lock.notify_all()

    def _raise_if_closed(self, session: str) -> None:
        if session in self._closed:
            raise TrainingCancelled(PAGE_CLOSED)

    def waiting(self) -> int:
        """Trainings running or waiting now."""
        with self._lock:
            return len(self._line)

    # -- the models -------------------------------------------------------------------------

    def keep(self, session: str, model: OwnModel) -> None:
        with self._lock:
            if session in self._closed:
                gone = [model]
            else:
                gone = [self._models.pop(session, None)]
                self._models[session] = model
                gone += self._take_expired(current=session)
        _delete(gone)
        self._raise_if_closed(session)

    def get(self, session: str) -> OwnModel:
        """The session's model; while a training of the session waits or runs, its place in the
        line instead: the page shows that training, no longer a model it would replace."""
        with self._lock:
            place = self._line.index(session) if session in self._line else None
            model = self._models.get(session)
            if place is None and model is not None:
                model.used = time.monotonic()
        if place is not None:
            raise UserError(WAITING_IN_LINE.format(ahead=place) if place else STILL_TRAINING)
        if model is None:
            raise UserError("no model of yours is loaded: train one on your cohort first (models are removed when "
                            f"the page is closed or after {IDLE_SECONDS // 60} idle minutes)")
        return model

    def discard(self, session: str) -> None:
        """The page was closed: its model goes now, its training (waiting or running) stops."""
        with self._lock:
            gone = [self._models.pop(session, None)]
            if session in self._line:
                self._closed.add(session)
                self._lock.notify_all()
        _delete(gone)

    def expire(self) -> int:
        """Delete idle models and the least recently used over the limit (run by a timer)."""
        with self._lock:
            gone = self._take_expired()
        _delete(gone)
        return len(gone)

    def _take_expired(self, current: str | None = None) -> list[OwnModel]:
        """Under the lock: take out the idle models, then the least recently used over the limit."""
        idle = [s for s, m in self._models.items() if time.monotonic() - m.used > IDLE_SECONDS]
        by_use = sorted(self._models, key=lambda s: self._models[s].used)
        over = by_use[:max(0, len(self._models) - MAX_MODELS)]
        return [self._models.pop(s) for s in dict.fromkeys(idle + over) if s != current]

    def __len__(self) -> int:
        return len(self._models)
